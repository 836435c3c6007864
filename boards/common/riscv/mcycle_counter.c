/*
 * mcycle_counter.c: mg_board_counter from the standard 64-bit mcycle CSR (RV32: mcycle/mcycleh).
 * Under QEMU with `-icount shift=0`, mcycle equals the executed-instruction count, identical
 * across boots.
 */
#include "mg_board_private.h"

uint64_t mg_board_counter(void)
{
    uint32_t high, low, again;
    do {  /* re-read if the low word wrapped between the two reads of the high word */
        __asm__ volatile("csrr %0, mcycleh" : "=r"(high));
        __asm__ volatile("csrr %0, mcycle" : "=r"(low));
        __asm__ volatile("csrr %0, mcycleh" : "=r"(again));
    } while (high != again);
    return ((uint64_t)high << 32) | low;
}
