/*
 * ns16550_uart.c: the NS16550A UART of QEMU's RISC-V virt machine (byte registers, no shift).
 * THR/RBR +0, IER +1, LCR +3, LSR +5 (bit0 data ready, bit5 transmit holding register empty).
 *
 * FCR is never written: writing it makes QEMU flush the receive FIFO, which drops the host's first
 * command when it arrives before the firmware is up.
 */
#include "mg_board_private.h"

#define UART_REG(offset) (*(volatile uint8_t *)(uintptr_t)(MG_BOARD_UART_BASE + (offset)))
#define UART_THR UART_REG(0u)
#define UART_IER UART_REG(1u)
#define UART_LCR UART_REG(3u)
#define UART_LSR UART_REG(5u)

void mg_ns16550_init(void)
{
    UART_IER = 0u;      /* polled: no interrupts */
    UART_LCR = 0x03u;   /* 8 data bits, no parity, 1 stop bit, DLAB = 0 */
}

void mg_board_putc(uint8_t byte)
{
    while ((UART_LSR & 0x20u) == 0u) {
    }
    UART_THR = byte;
}

uint8_t mg_board_getc(void)
{
    while ((UART_LSR & 0x01u) == 0u) {
    }
    return UART_THR;
}
