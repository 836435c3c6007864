/*
 * board.c: STM32L4R5ZI on the NUCLEO-L4R5ZI (NUCLEO-144) board, written from RM0432 (STM32L4+
 * reference manual) and UM2179 (board user manual).
 *
 * Clock: HSI16 -> PLL (M=1, N=15, R=2) -> SYSCLK 120 MHz. 120 MHz needs voltage range 1 in boost
 * mode (PWR_CR5.R1MODE = 0) and 5 flash wait states; RM0432 (PWR, "Dynamic voltage scaling
 * management") asks for the AHB prescaler at /2 while switching above 80 MHz, and at least 1 us
 * before going back to /1. APB1 = APB2 = 120 MHz.
 * Host link: LPUART1 on PG7 (TX) / PG8 (RX), AF8, wired to the ST-LINK virtual COM port. Port G is
 * powered from VDDIO2, which must be declared valid (PWR_CR2.IOSV) before the pins work.
 * LPUART1 runs from HSI16, independent of the system clock.
 * Counter: DWT->CYCCNT, core cycles.
 */
#include "../common/cortex_m/cortex_m.h"

#define RCC_BASE 0x40021000u
#define RCC_CR MG_REG32(RCC_BASE + 0x00u)
#define RCC_CFGR MG_REG32(RCC_BASE + 0x08u)
#define RCC_PLLCFGR MG_REG32(RCC_BASE + 0x0Cu)
#define RCC_AHB2ENR MG_REG32(RCC_BASE + 0x4Cu)
#define RCC_APB1ENR1 MG_REG32(RCC_BASE + 0x58u)
#define RCC_APB1ENR2 MG_REG32(RCC_BASE + 0x5Cu)
#define RCC_CCIPR MG_REG32(RCC_BASE + 0x88u)

#define PWR_CR1 MG_REG32(0x40007000u)
#define PWR_CR2 MG_REG32(0x40007004u)
#define PWR_SR2 MG_REG32(0x40007014u)
#define PWR_CR5 MG_REG32(0x40007080u)
#define FLASH_ACR MG_REG32(0x40022000u)

#define GPIOG_BASE 0x48001800u
#define GPIO_MODER MG_REG32(GPIOG_BASE + 0x00u)
#define GPIO_OSPEEDR MG_REG32(GPIOG_BASE + 0x08u)
#define GPIO_PUPDR MG_REG32(GPIOG_BASE + 0x0Cu)
#define GPIO_AFRL MG_REG32(GPIOG_BASE + 0x20u)
#define GPIO_AFRH MG_REG32(GPIOG_BASE + 0x24u)

#define LPUART1_BASE 0x40008000u
#define LPUART_CR1 MG_REG32(LPUART1_BASE + 0x00u)
#define LPUART_BRR MG_REG32(LPUART1_BASE + 0x0Cu)
#define LPUART_ISR MG_REG32(LPUART1_BASE + 0x1Cu)
#define LPUART_ICR MG_REG32(LPUART1_BASE + 0x20u)
#define LPUART_RDR MG_REG32(LPUART1_BASE + 0x24u)
#define LPUART_TDR MG_REG32(LPUART1_BASE + 0x28u)

#define HSI16_HZ 16000000u

static void clock_init(void)
{
    RCC_APB1ENR1 |= 1u << 28;                            /* PWREN */
    (void)RCC_APB1ENR1;

    /* HSI16 on: PLL input and LPUART1 kernel clock. */
    RCC_CR |= 1u << 8;                                   /* HSION */
    while ((RCC_CR & (1u << 10)) == 0u) {                /* HSIRDY */
    }

    /* Range 1 (VOS = 01, the reset value) in boost mode (R1MODE = 0); wait for VOSF = 0. */
    PWR_CR1 = (PWR_CR1 & ~(3u << 9)) | (1u << 9);
    PWR_CR5 &= ~(1u << 8);
    while ((PWR_SR2 & (1u << 10)) != 0u) {
    }

    /* 5 wait states (range 1 boost, up to 120 MHz), prefetch, instruction and data caches. */
    FLASH_ACR = (FLASH_ACR & ~0xFu) | 5u | (1u << 8) | (1u << 9) | (1u << 10);
    while ((FLASH_ACR & 0xFu) != 5u) {
    }

    /* PLL: source HSI16 (PLLSRC = 10), M = /1 (field 0), N = 15 -> VCO 240 MHz, R = /2 -> 120 MHz. */
    RCC_CR &= ~(1u << 24);                               /* PLL off before configuring */
    while ((RCC_CR & (1u << 25)) != 0u) {
    }
    RCC_PLLCFGR = 2u | (0u << 4) | (15u << 8) | (0u << 25) | (1u << 24);   /* ... | PLLREN */
    RCC_CR |= 1u << 24;                                  /* PLLON */
    while ((RCC_CR & (1u << 25)) == 0u) {                /* PLLRDY */
    }

    /* AHB /2 during the switch above 80 MHz, SYSCLK = PLL, wait >= 1 us, then AHB /1.
     * APB1 and APB2 stay /1 (120 MHz allowed on L4+). */
    RCC_CFGR = (RCC_CFGR & ~((0xFu << 4) | (7u << 8) | (7u << 11))) | (8u << 4);
    RCC_CFGR = (RCC_CFGR & ~3u) | 3u;                    /* SW = PLL */
    while (((RCC_CFGR >> 2) & 3u) != 3u) {               /* SWS = PLL */
    }
    for (volatile uint32_t i = 0u; i < 200u; ++i) {     /* > 1 us at 60 MHz */
    }
    RCC_CFGR &= ~(0xFu << 4);                            /* HPRE = /1 */
}

static void uart_init(void)
{
    /* Port G lives on VDDIO2: declare it valid first (PWR_CR2.IOSV), or PG2..PG15 stay dead. */
    PWR_CR2 |= 1u << 9;
    RCC_AHB2ENR |= 1u << 6;                              /* GPIOG */
    RCC_APB1ENR2 |= 1u << 0;                             /* LPUART1 */
    RCC_CCIPR = (RCC_CCIPR & ~(3u << 10)) | (2u << 10);  /* LPUART1SEL = HSI16 */
    (void)RCC_APB1ENR2;

    /* PG7 = LPUART1_TX, PG8 = LPUART1_RX, both AF8; RX pulled up. */
    GPIO_MODER = (GPIO_MODER & ~((3u << 14) | (3u << 16))) | (2u << 14) | (2u << 16);
    GPIO_OSPEEDR |= 2u << 14;
    GPIO_PUPDR = (GPIO_PUPDR & ~(3u << 16)) | (1u << 16);
    GPIO_AFRL = (GPIO_AFRL & ~(0xFu << 28)) | (8u << 28);
    GPIO_AFRH = (GPIO_AFRH & ~0xFu) | 8u;

    /* LPUART: BRR = 256 * f_ck / baud (must be >= 0x300), 8N1. */
    LPUART_CR1 = 0u;
    LPUART_BRR = (uint32_t)(((uint64_t)HSI16_HZ * 256u + MG_BOARD_BAUD / 2u) / MG_BOARD_BAUD);
    LPUART_CR1 = (1u << 3) | (1u << 2) | 1u;             /* TE | RE | UE */
}

void mg_board_init(void)
{
    clock_init();
    uart_init();
    mg_dwt_counter_init();
}

void mg_board_putc(uint8_t byte)
{
    while ((LPUART_ISR & (1u << 7)) == 0u) {             /* TXE */
    }
    LPUART_TDR = byte;
}

uint8_t mg_board_getc(void)
{
    for (;;) {
        uint32_t isr = LPUART_ISR;
        if ((isr & (1u << 5)) != 0u) {                   /* RXNE */
            return (uint8_t)LPUART_RDR;
        }
        if ((isr & (1u << 3)) != 0u) {                   /* overrun blocks reception: clear it */
            LPUART_ICR = 1u << 3;
        }
    }
}

void mg_board_exit(int code)
{
    (void)code;
    for (;;) {
        __asm__ volatile("wfi");
    }
}
