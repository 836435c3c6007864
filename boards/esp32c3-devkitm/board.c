/*
 * board.c: ESP32-C3 on the ESP32-C3-DevKitM-1, written from the ESP32-C3 Technical Reference
 * Manual (register offsets cross-checked with ESP-IDF's soc/esp32c3 headers).
 *
 * Boot: no second-stage bootloader. The image (esptool elf2image) sits at flash offset 0 and the
 * ROM loader copies its segments straight into internal SRAM1: code through the instruction bus
 * (0x4038_0000), constants, data and the arena through the data bus (0x3FC9_0000 up to the ROM's
 * reserved area at 0x3FCD_C710); there is no flash cache/MMU set-up and no execute-in-place.
 * The ROM leaves three watchdogs running in flash-boot mode (RTC WDT, TIMG0 WDT, super WDT):
 * we stop the first two and set the super WDT to auto-feed.
 * Clock: the CPU runs from the 40 MHz crystal (SYSTEM_SYSCLK_CONF.SOC_CLK_SEL = XTAL, divider 1);
 * the PLL is not used (its analog set-up is not documented in the TRM).
 * Host link: UART0 (GPIO21 TX, GPIO20 RX, the IO_MUX defaults the ROM already uses), wired to the
 * board's CP2102N USB-UART bridge; clocked from XTAL, 8N1.
 * Counter: the machine performance counter (mpcer/mpcmr/mpccr, CSRs 0x7E0-0x7E2) counting CPU
 * cycles, extended to 64 bits in software (the core has no standard mcycle).
 */
#include "mg_board_private.h"

#define RTC_CNTL_BASE 0x60008000u
#define RTC_CNTL_WDTCONFIG0 MG_REG32(RTC_CNTL_BASE + 0x090u)
#define RTC_CNTL_WDTWPROTECT MG_REG32(RTC_CNTL_BASE + 0x0A8u)
#define RTC_CNTL_SWD_CONF MG_REG32(RTC_CNTL_BASE + 0x0ACu)
#define RTC_CNTL_SWD_WPROTECT MG_REG32(RTC_CNTL_BASE + 0x0B0u)
#define WDT_WKEY 0x50D83AA1u
#define SWD_WKEY 0x8F1D312Au

#define TIMG0_BASE 0x6001F000u
#define TIMG0_WDTCONFIG0 MG_REG32(TIMG0_BASE + 0x048u)
#define TIMG0_WDTWPROTECT MG_REG32(TIMG0_BASE + 0x064u)

#define SYSTEM_SYSCLK_CONF MG_REG32(0x600C0058u)

#define UART0_BASE MG_BOARD_UART_BASE
#define UART_FIFO MG_REG32(UART0_BASE + 0x00u)
#define UART_CLKDIV MG_REG32(UART0_BASE + 0x14u)
#define UART_STATUS MG_REG32(UART0_BASE + 0x1Cu)
#define UART_CONF0 MG_REG32(UART0_BASE + 0x20u)
#define UART_CLK_CONF MG_REG32(UART0_BASE + 0x78u)
#define UART_ID MG_REG32(UART0_BASE + 0x80u)

#define XTAL_HZ 40000000u
#define UART_FIFO_BYTES 128u

static void watchdogs_off(void)
{
    RTC_CNTL_WDTWPROTECT = WDT_WKEY;
    RTC_CNTL_WDTCONFIG0 = 0u;                            /* WDT_EN and FLASHBOOT_MOD_EN off */
    RTC_CNTL_WDTWPROTECT = 0u;

    RTC_CNTL_SWD_WPROTECT = SWD_WKEY;
    RTC_CNTL_SWD_CONF |= 1u << 31;                       /* SWD_AUTO_FEED_EN */
    RTC_CNTL_SWD_WPROTECT = 0u;

    TIMG0_WDTWPROTECT = WDT_WKEY;
    TIMG0_WDTCONFIG0 = 0u;                               /* WDT_EN and FLASHBOOT_MOD_EN off */
    TIMG0_WDTCONFIG0 = 1u << 22;                         /* WDT_CONF_UPDATE_EN: apply */
    TIMG0_WDTWPROTECT = 0u;
}

static void clock_init(void)
{
    /* SOC_CLK_SEL (bits 11:10) = 0: XTAL; PRE_DIV_CNT (bits 9:0) = 0: divide by 1. CPU = APB = 40 MHz. */
    SYSTEM_SYSCLK_CONF &= ~((3u << 10) | 0x3FFu);
}

static void uart_init(void)
{
    /* Let the ROM's boot messages drain before touching the baud rate. */
    while (((UART_STATUS >> 16) & 0x3FFu) != 0u) {
    }
    /* UART clock = XTAL (SCLK_SEL = 3), SCLK_DIV_NUM = 0 (/1), TX/RX clocks enabled. */
    UART_CLK_CONF = (1u << 25) | (1u << 24) | (1u << 22) | (3u << 20);
    /* Divider in 1/16 steps: 40 MHz * 16 / 115200 = 5555.6 -> 347 + 4/16 (115,191 baud). */
    {
        uint32_t div16 = (XTAL_HZ * 16u + MG_BOARD_BAUD / 2u) / MG_BOARD_BAUD;
        UART_CLKDIV = ((div16 & 0xFu) << 20) | (div16 >> 4);
    }
    UART_CONF0 = (UART_CONF0 & ~((3u << 4) | (3u << 2) | 3u)) | (1u << 4) | (3u << 2);  /* 8N1 */
    /* Push the settings into the UART core clock domain; the bit clears itself when done. */
    UART_ID |= 1u << 31;
    for (uint32_t spin = 0u; spin < 100000u && (UART_ID & (1u << 31)) != 0u; ++spin) {
    }
}

static void counter_init(void)
{
    __asm__ volatile("csrwi 0x7E0, 1");                  /* mpcer: count clock cycles */
    __asm__ volatile("csrwi 0x7E1, 1");                  /* mpcmr: count enable */
    __asm__ volatile("csrwi 0x7E2, 0");                  /* mpccr: start from zero */
}

void mg_board_init(void)
{
    watchdogs_off();
    clock_init();
    uart_init();
    counter_init();
}

void mg_board_putc(uint8_t byte)
{
    while (((UART_STATUS >> 16) & 0x3FFu) >= UART_FIFO_BYTES - 1u) {   /* TXFIFO_CNT */
    }
    UART_FIFO = byte;
}

uint8_t mg_board_getc(void)
{
    while ((UART_STATUS & 0x3FFu) == 0u) {               /* RXFIFO_CNT */
    }
    return (uint8_t)(UART_FIFO & 0xFFu);
}

/* mpccr is 32 bits: extend it in software (one read per 2^32 cycles, 107 s at 40 MHz, suffices). */
static uint32_t last_low;
static uint32_t high;

uint64_t mg_board_counter(void)
{
    uint32_t now;
    __asm__ volatile("csrr %0, 0x7E2" : "=r"(now));
    if (now < last_low) {
        ++high;
    }
    last_low = now;
    return ((uint64_t)high << 32) | now;
}

void mg_board_exit(int code)
{
    (void)code;
    /* Let the last bytes leave the FIFO, then wait for the host to reset the board. */
    while (((UART_STATUS >> 16) & 0x3FFu) != 0u) {
    }
    for (;;) {
        __asm__ volatile("wfi");
    }
}
