/*
 * dwt_counter.c: mg_board_counter on real Cortex-M silicon: DWT->CYCCNT (core clock cycles),
 * extended to 64 bits in software.
 *
 * The extension counts wraps seen between two reads, so it needs a read at least once per 2^32
 * cycles (20 s at 216 MHz); the harness reads around every layer, far more often.
 */
#include "cortex_m.h"

static uint32_t last_low;
static uint32_t high;

uint64_t mg_board_counter(void)
{
    uint32_t now = DWT_CYCCNT;
    if (now < last_low) {
        ++high;
    }
    last_low = now;
    return ((uint64_t)high << 32) | now;
}
