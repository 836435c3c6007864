/*
 * mg_board_private.h: what the shared board code (startup, fault reporting) needs from each board,
 * beyond the public contract in mg_board.h.
 *
 * Every board build also gets mg_board_config.h, generated from its board.toml (clock, UART base,
 * baud rate, memory regions), so the C and the board file cannot disagree.
 */
#ifndef MG_BOARD_PRIVATE_H
#define MG_BOARD_PRIVATE_H

#include <stdint.h>

#include "mg_board.h"
#include "mg_board_config.h"

#define MG_REG32(addr) (*(volatile uint32_t *)(uintptr_t)(addr))

/* Linker-script symbols (boards/../firmware_link.ld.j2). */
extern uint32_t _sidata[], _sdata[], _edata[], _sbss[], _ebss[];
extern uint32_t _sstack[], _estack[];

/* The firmware's entry point (the measurement harness). */
int main(void);

/* Copy .data from its load address, zero .bss, run main, and pass its result to mg_board_exit. */
void mg_c_runtime_start(void) __attribute__((noreturn));

/*
 * Print "FAULT pc=0x%08x lr=0x%08x cfsr=0x%08x hfsr=0x%08x\n" over the board UART, byte by byte
 * (no printf: the fault may have left the C library or the stack unusable), then mg_board_exit(3).
 * On RISC-V, cfsr carries mcause and hfsr carries mtval.
 */
void mg_fault_report(uint32_t pc, uint32_t lr, uint32_t cfsr, uint32_t hfsr) __attribute__((noreturn));

/* Drivers shared by several boards (each board.toml lists the ones it uses). */
void mg_cmsdk_uart_init(void);        /* cmsdk_uart.c: MPS2/MPS3 UART at MG_BOARD_UART_BASE */
void mg_ns16550_init(void);           /* ns16550_uart.c: NS16550A at MG_BOARD_UART_BASE */
void mg_systick_counter_init(void);   /* cortex_m/systick_counter.c: 64-bit count from SysTick */

#endif /* MG_BOARD_PRIVATE_H */
