/*
 * startup.c: vector table, reset handler and fault handler for every Cortex-M board.
 *
 * Reset: enable the FPU (and Helium on Armv8.1-M) through CPACR before any floating-point code
 * runs, point VTOR at our table, set the stack limit on Armv8-M, then hand over to the C runtime
 * start (copy .data, zero .bss, main). Faults and unexpected interrupts print one FAULT line over the
 * UART (see mg_fault_report) and end the run with code 3.
 */
#include "cortex_m.h"

#ifndef MG_BOARD_IRQ_COUNT
#error "mg_board_config.h must define MG_BOARD_IRQ_COUNT (external interrupt lines of the chip)"
#endif

void mg_reset_handler(void) __attribute__((noreturn));
void mg_fault_handler(void) __attribute__((naked));
void mg_fault_from_frame(const uint32_t *frame) __attribute__((noreturn, used));

/* A board that uses an exception defines it (the QEMU boards define SysTick_Handler). */
void SysTick_Handler(void) __attribute__((weak, alias("mg_fault_handler")));

typedef void (*mg_vector_t)(void);

/* The table: initial stack pointer, 15 system exceptions, then the chip's interrupt lines.
 * Aligned to 1 KiB: VTOR needs the table size rounded up to a power of two (up to 240 lines). */
__attribute__((section(".isr_vector"), used, aligned(1024)))
const mg_vector_t mg_vectors[16 + MG_BOARD_IRQ_COUNT] = {
    [0] = (mg_vector_t)(uintptr_t)_estack,
    [1] = mg_reset_handler,
    [2] = mg_fault_handler,   /* NMI */
    [3] = mg_fault_handler,   /* HardFault */
    [4] = mg_fault_handler,   /* MemManage */
    [5] = mg_fault_handler,   /* BusFault */
    [6] = mg_fault_handler,   /* UsageFault */
    [7] = mg_fault_handler,   /* SecureFault (Armv8-M) */
    [11] = mg_fault_handler,  /* SVCall */
    [12] = mg_fault_handler,  /* DebugMonitor */
    [14] = mg_fault_handler,  /* PendSV */
    [15] = SysTick_Handler,
    [16 ... 16 + MG_BOARD_IRQ_COUNT - 1] = mg_fault_handler,
};

static void enable_fpu(void)
{
#if defined(__ARM_FP) || defined(__ARM_FEATURE_MVE)
    /* CP10 and CP11 full access: the FPU, and on Armv8.1-M also the MVE (Helium) unit. */
    SCB_CPACR |= 0xFu << 20;
    mg_dsb();
    mg_isb();
#endif
}

void mg_reset_handler(void)
{
    enable_fpu();
    SCB_VTOR = (uint32_t)(uintptr_t)mg_vectors;
#if defined(__ARM_ARCH_8M_MAIN__) || defined(__ARM_ARCH_8_1M_MAIN__)
    /* Armv8-M: a stack overflow raises a precise STKOF UsageFault instead of corrupting .bss. */
    __asm__ volatile("msr msplim, %0" ::"r"((uint32_t)(uintptr_t)_sstack));
#endif
    mg_dsb();
    mg_isb();
    mg_c_runtime_start();
}

/*
 * Naked entry: pick the stack the exception frame was pushed on (EXC_RETURN bit 2), then move MSP
 * back to the top of RAM, since the fault may be a stack overflow, and report from C.
 */
void mg_fault_handler(void)
{
    __asm__ volatile(
        "tst lr, #4\n\t"
        "ite eq\n\t"
        "mrseq r0, msp\n\t"
        "mrsne r0, psp\n\t"
        "ldr r1, =_estack\n\t"
        "msr msp, r1\n\t"
        "b mg_fault_from_frame\n\t"
        ".ltorg\n\t");
}

void mg_fault_from_frame(const uint32_t *frame)
{
    /* Frame: r0 r1 r2 r3 r12 lr pc xpsr. Read it only if it lies inside RAM; a failed stacking
     * (e.g. overflow below RAM) leaves a pointer we must not follow. */
    uintptr_t at = (uintptr_t)frame;
    uint32_t pc = 0xFFFFFFFFu;
    uint32_t lr = 0xFFFFFFFFu;
    if (at >= MG_BOARD_RAM_ORIGIN && at + 32u <= (uintptr_t)_estack && (at & 3u) == 0u) {
        lr = frame[5];
        pc = frame[6];
    }
    mg_fault_report(pc, lr, SCB_CFSR, SCB_HFSR);
}
