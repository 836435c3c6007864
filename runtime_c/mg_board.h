/*
 * mg_board.h: what every board's support code provides to the measurement firmware.
 *
 * Each boards/<name>/ folder implements these in C (startup, UART, counter), written from the chip's
 * reference manual, without a vendor HAL.
 */
#ifndef MG_BOARD_H
#define MG_BOARD_H

#include <stdint.h>

/* Clocks, UART and the cycle (or instruction) counter. Called once from main before anything else. */
void mg_board_init(void);

/* Blocking write of one byte to the host link (the UART the host talks to). */
void mg_board_putc(uint8_t byte);

/* Blocking read of one byte from the host link. */
uint8_t mg_board_getc(void);

/*
 * A free-running 64-bit counter: core cycles on real boards (DWT->CYCCNT, mcycle), or a count that
 * advances with executed instructions on QEMU (-icount: SysTick, mcycle). The board file says which
 * unit it is and how many units one count is worth.
 */
uint64_t mg_board_counter(void);

/* End the run: emulators exit with `code`; real boards stop in a loop. */
void mg_board_exit(int code) __attribute__((noreturn));

#endif /* MG_BOARD_H */
