/*
 * qemu_riscv_virt.c: mg_board_init and mg_board_exit for QEMU's RISC-V virt machine (-bios none).
 *
 * Exit: the SiFive test device at MG_BOARD_EXIT_BASE ends QEMU: 0x5555 with status 0, or
 * (code << 16) | 0x3333 with status `code`.
 */
#include "mg_board_private.h"

void mg_board_init(void)
{
    mg_ns16550_init();
}

void mg_board_exit(int code)
{
    uint32_t value = code == 0 ? 0x5555u : (((uint32_t)code & 0xFFFFu) << 16) | 0x3333u;
    MG_REG32(MG_BOARD_EXIT_BASE) = value;
    for (;;) {
    }
}
