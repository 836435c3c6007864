/*
 * qemu_mps.c: mg_board_init and mg_board_exit for the QEMU MPS2/MPS3 machines (qemu-cortex-m4,
 * qemu-cortex-m7, qemu-cortex-m55).
 *
 * Exit: SYSRESETREQ; QEMU started with -no-reboot then ends with status 0 (the run's own status
 * travels over the UART). The UART is the CMSDK UART at MG_BOARD_UART_BASE.
 */
#include "cortex_m/cortex_m.h"

void mg_board_init(void)
{
    mg_cmsdk_uart_init();
    mg_systick_counter_init();
}

void mg_board_exit(int code)
{
    (void)code;
    mg_sysresetreq();
}
