/*
 * cortex_m.h: the Armv7-M / Armv8-M system registers the board code uses (ARM DDI 0403, DDI 0553).
 */
#ifndef MG_CORTEX_M_H
#define MG_CORTEX_M_H

#include <stdint.h>

#include "mg_board_private.h"

/* System Control Block */
#define SCB_ICSR MG_REG32(0xE000ED04u)   /* bit 26 PENDSTSET: SysTick pending */
#define SCB_VTOR MG_REG32(0xE000ED08u)
#define SCB_AIRCR MG_REG32(0xE000ED0Cu)
#define SCB_CCR MG_REG32(0xE000ED14u)    /* bit 16 DC, bit 17 IC (Cortex-M7/M55 caches) */
#define SCB_CFSR MG_REG32(0xE000ED28u)
#define SCB_HFSR MG_REG32(0xE000ED2Cu)
#define SCB_CCSIDR MG_REG32(0xE000ED80u)
#define SCB_CSSELR MG_REG32(0xE000ED84u)
#define SCB_CPACR MG_REG32(0xE000ED88u)
#define SCB_ICIALLU MG_REG32(0xE000EF50u)
#define SCB_DCISW MG_REG32(0xE000EF60u)

#define AIRCR_VECTKEY (0x05FAu << 16)
#define AIRCR_SYSRESETREQ (1u << 2)
#define ICSR_PENDSTSET (1u << 26)

/* SysTick */
#define SYST_CSR MG_REG32(0xE000E010u)
#define SYST_RVR MG_REG32(0xE000E014u)
#define SYST_CVR MG_REG32(0xE000E018u)

/* Debug: DEMCR.TRCENA powers the DWT; DWT.CYCCNT counts core cycles (not modelled by QEMU). */
#define DEMCR MG_REG32(0xE000EDFCu)
#define DWT_CTRL MG_REG32(0xE0001000u)
#define DWT_CYCCNT MG_REG32(0xE0001004u)
#define DWT_LAR MG_REG32(0xE0001FB0u)

static inline void mg_dsb(void)
{
    __asm__ volatile("dsb 0xF" ::: "memory");
}

static inline void mg_isb(void)
{
    __asm__ volatile("isb 0xF" ::: "memory");
}

static inline uint32_t mg_irq_save(void)
{
    uint32_t primask;
    __asm__ volatile("mrs %0, primask\n\tcpsid i" : "=r"(primask)::"memory");
    return primask;
}

static inline void mg_irq_restore(uint32_t primask)
{
    __asm__ volatile("msr primask, %0" ::"r"(primask) : "memory");
}

/* The SysTick exception; systick_counter.c defines it, startup.c defaults it to the fault handler. */
void SysTick_Handler(void);

/* Shared Cortex-M helpers (cortex_m_common.c). */
void mg_cortex_m_enable_caches(void);   /* Cortex-M7: invalidate, then enable the L1 I- and D-cache */
void mg_dwt_counter_init(void);         /* real boards: start DWT->CYCCNT */
void mg_sysresetreq(void) __attribute__((noreturn));

#endif /* MG_CORTEX_M_H */
