/*
 * board.c: nRF52840 on the nRF52840-DK (PCA10056), written from the nRF52840 Product
 * Specification v1.x.
 *
 * Clock: the Cortex-M4F always runs at 64 MHz; we start the 32 MHz crystal (HFXO) so the UART baud
 * rate is crystal-accurate, and enable the flash instruction cache (NVMC.ICACHECNF).
 * Host link: UARTE0, TXD on P0.06 and RXD on P0.08, wired to the J-Link OB virtual COM port;
 * no flow control. Bytes move by EasyDMA through one-byte buffers in RAM. Reception stays armed
 * between mg_board_getc calls, so one byte can arrive while the firmware is busy (plus what the
 * UARTE RX FIFO holds); the host protocol is request/response, so it never sends more.
 * Counter: DWT->CYCCNT, core cycles.
 */
#include "../common/cortex_m/cortex_m.h"

#define CLOCK_BASE 0x40000000u
#define CLOCK_TASKS_HFCLKSTART MG_REG32(CLOCK_BASE + 0x000u)
#define CLOCK_EVENTS_HFCLKSTARTED MG_REG32(CLOCK_BASE + 0x100u)

#define NVMC_ICACHECNF MG_REG32(0x4001E540u)

#define P0_BASE 0x50000000u
#define P0_OUTSET MG_REG32(P0_BASE + 0x508u)
#define P0_DIRSET MG_REG32(P0_BASE + 0x518u)
#define P0_PIN_CNF(pin) MG_REG32(P0_BASE + 0x700u + 4u * (pin))

#define UARTE0_BASE 0x40002000u
#define UARTE_TASKS_STARTRX MG_REG32(UARTE0_BASE + 0x000u)
#define UARTE_TASKS_STARTTX MG_REG32(UARTE0_BASE + 0x008u)
#define UARTE_EVENTS_ENDRX MG_REG32(UARTE0_BASE + 0x110u)
#define UARTE_EVENTS_ENDTX MG_REG32(UARTE0_BASE + 0x120u)
#define UARTE_ENABLE MG_REG32(UARTE0_BASE + 0x500u)
#define UARTE_PSEL_RTS MG_REG32(UARTE0_BASE + 0x508u)
#define UARTE_PSEL_TXD MG_REG32(UARTE0_BASE + 0x50Cu)
#define UARTE_PSEL_CTS MG_REG32(UARTE0_BASE + 0x510u)
#define UARTE_PSEL_RXD MG_REG32(UARTE0_BASE + 0x514u)
#define UARTE_BAUDRATE MG_REG32(UARTE0_BASE + 0x524u)
#define UARTE_RXD_PTR MG_REG32(UARTE0_BASE + 0x534u)
#define UARTE_RXD_MAXCNT MG_REG32(UARTE0_BASE + 0x538u)
#define UARTE_TXD_PTR MG_REG32(UARTE0_BASE + 0x544u)
#define UARTE_TXD_MAXCNT MG_REG32(UARTE0_BASE + 0x548u)
#define UARTE_CONFIG MG_REG32(UARTE0_BASE + 0x56Cu)

#define PIN_TXD 6u
#define PIN_RXD 8u
#define PSEL_DISCONNECTED 0x80000000u
#define UARTE_ENABLE_VALUE 8u
#define UARTE_BAUD_115200 0x01D60000u   /* UARTE value (actual 115108 baud); UART uses another */

#if MG_BOARD_BAUD != 115200
#error "nrf52840-dk: only 115200 baud is tabulated here (BAUDRATE register values are not linear)"
#endif

/* EasyDMA can only reach RAM: the one-byte transfer buffers live in .bss. */
static volatile uint8_t tx_byte;
static volatile uint8_t rx_byte;

static void start_rx(void)
{
    UARTE_RXD_PTR = (uint32_t)(uintptr_t)&rx_byte;
    UARTE_RXD_MAXCNT = 1u;
    UARTE_TASKS_STARTRX = 1u;
}

void mg_board_init(void)
{
    CLOCK_EVENTS_HFCLKSTARTED = 0u;
    CLOCK_TASKS_HFCLKSTART = 1u;
    while (CLOCK_EVENTS_HFCLKSTARTED == 0u) {
    }
    CLOCK_EVENTS_HFCLKSTARTED = 0u;
    NVMC_ICACHECNF |= 1u;                                /* CACHEEN */

    /* TXD idles high: drive it high before the UARTE takes the pin. RXD: input with pull-up. */
    P0_OUTSET = 1u << PIN_TXD;
    P0_DIRSET = 1u << PIN_TXD;
    P0_PIN_CNF(PIN_TXD) = 1u | (1u << 1);                /* output, input buffer disconnected */
    P0_PIN_CNF(PIN_RXD) = 3u << 2;                       /* input, pull-up */

    UARTE_PSEL_TXD = PIN_TXD;                            /* port 0, connected */
    UARTE_PSEL_RXD = PIN_RXD;
    UARTE_PSEL_RTS = PSEL_DISCONNECTED;
    UARTE_PSEL_CTS = PSEL_DISCONNECTED;
    UARTE_BAUDRATE = UARTE_BAUD_115200;
    UARTE_CONFIG = 0u;                                   /* 8N1, no flow control */
    UARTE_ENABLE = UARTE_ENABLE_VALUE;
    UARTE_EVENTS_ENDRX = 0u;
    start_rx();

    mg_dwt_counter_init();
}

void mg_board_putc(uint8_t byte)
{
    tx_byte = byte;
    UARTE_EVENTS_ENDTX = 0u;
    UARTE_TXD_PTR = (uint32_t)(uintptr_t)&tx_byte;
    UARTE_TXD_MAXCNT = 1u;
    UARTE_TASKS_STARTTX = 1u;
    while (UARTE_EVENTS_ENDTX == 0u) {
    }
    UARTE_EVENTS_ENDTX = 0u;
}

uint8_t mg_board_getc(void)
{
    uint8_t byte;
    while (UARTE_EVENTS_ENDRX == 0u) {
    }
    UARTE_EVENTS_ENDRX = 0u;
    byte = rx_byte;
    start_rx();                                          /* re-arm at once for the next byte */
    return byte;
}

void mg_board_exit(int code)
{
    (void)code;
    for (;;) {
        __asm__ volatile("wfi");
    }
}
