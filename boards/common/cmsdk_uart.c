/*
 * cmsdk_uart.c: the Arm CMSDK APB UART of the MPS2/MPS3 FPGA images (QEMU mps2-an386/an500,
 * mps3-an547). Registers (Arm DDI 0479, 4.4): DATA +0x00, STATE +0x04 (bit0 TX full, bit1 RX full),
 * CTRL +0x08 (bit0 TX enable, bit1 RX enable), BAUDDIV +0x10 (>= 16).
 */
#include "mg_board_private.h"

#define UART_DATA MG_REG32(MG_BOARD_UART_BASE + 0x00u)
#define UART_STATE MG_REG32(MG_BOARD_UART_BASE + 0x04u)
#define UART_CTRL MG_REG32(MG_BOARD_UART_BASE + 0x08u)
#define UART_BAUDDIV MG_REG32(MG_BOARD_UART_BASE + 0x10u)

void mg_cmsdk_uart_init(void)
{
    UART_BAUDDIV = 16u;          /* the smallest legal divider; QEMU ignores the rate */
    UART_CTRL = 3u;
}

void mg_board_putc(uint8_t byte)
{
    while ((UART_STATE & 1u) != 0u) {
    }
    UART_DATA = byte;
}

uint8_t mg_board_getc(void)
{
    while ((UART_STATE & 2u) == 0u) {
    }
    return (uint8_t)UART_DATA;
}
