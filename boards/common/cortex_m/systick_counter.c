/*
 * systick_counter.c: mg_board_counter on QEMU Cortex-M machines.
 *
 * QEMU does not model DWT->CYCCNT, but with `-icount shift=0` virtual time advances 1 ns per
 * executed instruction, so SysTick (clocked at MG_BOARD_CLOCK_HZ) ticks once per
 * 1e9 / MG_BOARD_CLOCK_HZ instructions (40 on the 25 MHz mps2 machines). The 24-bit down-counter
 * wraps into a software count kept by the SysTick interrupt, giving a 64-bit tick total.
 */
#include "cortex_m.h"

#define SYST_RELOAD 0x00FFFFFFu

static volatile uint32_t wraps;

void SysTick_Handler(void)
{
    ++wraps;
}

void mg_systick_counter_init(void)
{
    SYST_CSR = 0u;
    SYST_RVR = SYST_RELOAD;
    SYST_CVR = 0u;               /* any write clears the count; it reloads on the next tick */
    SYST_CSR = 7u;               /* ENABLE | TICKINT | CLKSOURCE = processor clock */
}

uint64_t mg_board_counter(void)
{
    /* With interrupts masked, a wrap that happened after the last interrupt shows up as a pending
     * SysTick: count it here and re-read the value, which is then surely after the wrap. */
    uint32_t primask = mg_irq_save();
    uint32_t high = wraps;
    uint32_t value = SYST_CVR;
    if ((SCB_ICSR & ICSR_PENDSTSET) != 0u) {
        value = SYST_CVR;
        ++high;
    }
    mg_irq_restore(primask);
    /* A period starts at the 1 -> 0 transition (which pends the interrupt) and runs 0, RELOAD,
     * RELOAD-1, ..., 1: so 0 means "no tick yet in this period". The count written at start-up
     * (0) therefore reads as 0 ticks too. */
    return (uint64_t)high * (SYST_RELOAD + 1u) + (value == 0u ? 0u : SYST_RELOAD + 1u - value);
}
