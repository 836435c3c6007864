/*
 * start.S: reset entry and trap entry for the RV32 boards.
 *
 * _start sits first in the code region (the linker script puts .text.mg_start there): it sets gp
 * and sp, installs the trap entry and runs the C runtime start (copy .data, zero .bss, main).
 * Interrupts stay disabled (mstatus.MIE = 0), so every trap is an exception: the trap entry reports
 * it as "FAULT pc=<mepc> lr=<ra> cfsr=<mcause> hfsr=<mtval>" and ends the run.
 */
    .section .text.mg_start, "ax", @progbits
    .globl _start
    .type _start, @function
_start:
    .option push
    .option norelax
    la gp, __global_pointer$
    .option pop
    la sp, _estack
    /* Vectored mode (low bit 1): exceptions go to BASE; this also suits cores that only
     * implement vectored mode (ESP32-C3). BASE must be 256-byte aligned there. */
    la t0, mg_trap_entry
    ori t0, t0, 1
    csrw mtvec, t0
    call mg_c_runtime_start
1:  j 1b
    .size _start, . - _start

    .section .text.mg_trap, "ax", @progbits
    .balign 256
    .globl mg_trap_entry
    .type mg_trap_entry, @function
mg_trap_entry:
    mv a1, ra
    csrr a0, mepc
    csrr a2, mcause
    csrr a3, mtval
    la sp, _estack      /* fresh stack: the fault may be a stack overflow */
    j mg_fault_report
    .size mg_trap_entry, . - mg_trap_entry
