/*
 * mg_runtime.c: the C runtime start shared by all boards, and the fault line.
 */
#include "mg_board_private.h"

void mg_c_runtime_start(void)
{
    /* Volatile pointers: keep these loops as written. At -O2 gcc would otherwise turn them into
     * memcpy/memset calls, which is fine, but plain loops keep startup independent of the C library. */
    volatile uint32_t *dst = _sdata;
    const volatile uint32_t *src = _sidata;
    if (src != dst) {  /* boards whose loader puts .data in place (esp32c3) skip the copy */
        while (dst < _edata) {
            *dst++ = *src++;
        }
    }
    for (dst = _sbss; dst < _ebss; ++dst) {
        *dst = 0u;
    }
    mg_board_exit(main());
}

static void put_text(const char *text)
{
    while (*text != '\0') {
        mg_board_putc((uint8_t)*text++);
    }
}

static void put_hex32(uint32_t value)
{
    static const char digits[] = "0123456789abcdef";
    int shift;
    put_text("0x");
    for (shift = 28; shift >= 0; shift -= 4) {
        mg_board_putc((uint8_t)digits[(value >> shift) & 0xFu]);
    }
}

void mg_fault_report(uint32_t pc, uint32_t lr, uint32_t cfsr, uint32_t hfsr)
{
    put_text("FAULT pc=");
    put_hex32(pc);
    put_text(" lr=");
    put_hex32(lr);
    put_text(" cfsr=");
    put_hex32(cfsr);
    put_text(" hfsr=");
    put_hex32(hfsr);
    put_text("\n");
    mg_board_exit(3);
}
