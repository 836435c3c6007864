/*
 * cortex_m_common.c: helpers shared by Cortex-M boards: L1 caches (Cortex-M7), the DWT cycle
 * counter (real silicon), and the SYSRESETREQ exit (QEMU with -no-reboot ends there).
 */
#include "cortex_m.h"

void mg_cortex_m_enable_caches(void)
{
    uint32_t ccsidr, sets, ways, set_shift, way_shift, set, way;

    /* I-cache: invalidate all, then enable (ARM DDI 0489, 4.8 "Cache maintenance operations"). */
    mg_dsb();
    mg_isb();
    SCB_ICIALLU = 0u;
    mg_dsb();
    mg_isb();
    SCB_CCR |= 1u << 17;
    mg_dsb();
    mg_isb();

    /* D-cache: select level 1 data, invalidate every set/way, then enable. */
    SCB_CSSELR = 0u;
    mg_dsb();
    ccsidr = SCB_CCSIDR;
    sets = ((ccsidr >> 13) & 0x7FFFu) + 1u;
    ways = ((ccsidr >> 3) & 0x3FFu) + 1u;
    set_shift = (ccsidr & 7u) + 4u;                            /* log2(line bytes) */
    way_shift = (uint32_t)__builtin_clz(ways - 1u);            /* ways in the top bits */
    for (set = 0u; set < sets; ++set) {
        for (way = 0u; way < ways; ++way) {
            SCB_DCISW = (way << way_shift) | (set << set_shift);
        }
    }
    mg_dsb();
    SCB_CCR |= 1u << 16;
    mg_dsb();
    mg_isb();
}

void mg_dwt_counter_init(void)
{
    DEMCR |= 1u << 24;           /* TRCENA: power the DWT */
    DWT_LAR = 0xC5ACCE55u;       /* unlock (needed on Cortex-M7; ignored where there is no lock) */
    DWT_CYCCNT = 0u;
    DWT_CTRL |= 1u;              /* CYCCNTENA */
}

void mg_sysresetreq(void)
{
    mg_dsb();
    SCB_AIRCR = AIRCR_VECTKEY | AIRCR_SYSRESETREQ;
    mg_dsb();
    for (;;) {
    }
}
