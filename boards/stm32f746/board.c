/*
 * board.c: STM32F746NG on the 32F746G-DISCO board, written from RM0385 (STM32F75xxx/74xxx reference
 * manual) and UM1907 (board user manual).
 *
 * Clock: HSE 25 MHz crystal -> PLL (M=25, N=432, P=2, Q=9) -> SYSCLK 216 MHz, which needs voltage
 * scale 1, over-drive mode and 7 flash wait states (RM0385 3.3.2, 4.1.4). AHB 216 MHz, APB1 54 MHz
 * (/4), APB2 108 MHz (/2). L1 I/D caches and the ART accelerator on.
 * Host link: USART1, TX on PA9 and RX on PB7 (AF7), wired to the ST-LINK virtual COM port.
 * Counter: DWT->CYCCNT, core cycles.
 */
#include "../common/cortex_m/cortex_m.h"

#define RCC_BASE 0x40023800u
#define RCC_CR MG_REG32(RCC_BASE + 0x00u)
#define RCC_PLLCFGR MG_REG32(RCC_BASE + 0x04u)
#define RCC_CFGR MG_REG32(RCC_BASE + 0x08u)
#define RCC_AHB1ENR MG_REG32(RCC_BASE + 0x30u)
#define RCC_APB1ENR MG_REG32(RCC_BASE + 0x40u)
#define RCC_APB2ENR MG_REG32(RCC_BASE + 0x44u)

#define PWR_CR1 MG_REG32(0x40007000u)
#define PWR_CSR1 MG_REG32(0x40007004u)
#define FLASH_ACR MG_REG32(0x40023C00u)

#define GPIOA_BASE 0x40020000u
#define GPIOB_BASE 0x40020400u
#define GPIO_MODER(base) MG_REG32((base) + 0x00u)
#define GPIO_OSPEEDR(base) MG_REG32((base) + 0x08u)
#define GPIO_PUPDR(base) MG_REG32((base) + 0x0Cu)
#define GPIO_AFRL(base) MG_REG32((base) + 0x20u)
#define GPIO_AFRH(base) MG_REG32((base) + 0x24u)

#define USART1_BASE 0x40011000u
#define USART_CR1 MG_REG32(USART1_BASE + 0x00u)
#define USART_BRR MG_REG32(USART1_BASE + 0x0Cu)
#define USART_ISR MG_REG32(USART1_BASE + 0x1Cu)
#define USART_ICR MG_REG32(USART1_BASE + 0x20u)
#define USART_RDR MG_REG32(USART1_BASE + 0x24u)
#define USART_TDR MG_REG32(USART1_BASE + 0x28u)

#define APB2_HZ (MG_BOARD_CLOCK_HZ / 2u)

static void clock_init(void)
{
    /* HSE on (crystal, not bypass) and wait until it is stable. */
    RCC_CR |= 1u << 16;                                  /* HSEON */
    while ((RCC_CR & (1u << 17)) == 0u) {                /* HSERDY */
    }

    /* The PWR block needs its clock before VOS/ODEN can be written. VOS may only change while the
     * PLL is off; scale 1 (VOS = 0b11) allows 180 MHz, over-drive then allows 216 MHz. */
    RCC_APB1ENR |= 1u << 28;                             /* PWREN */
    (void)RCC_APB1ENR;                                   /* read back: clock is on before use */
    PWR_CR1 = (PWR_CR1 & ~(3u << 14)) | (3u << 14);

    /* PLL from HSE: 25 MHz / 25 * 432 / 2 = 216 MHz; /9 = 48 MHz for USB/SDMMC. Reserved bits kept. */
    RCC_PLLCFGR = (RCC_PLLCFGR & ~(0x3Fu | (0x1FFu << 6) | (3u << 16) | (1u << 22) | (0xFu << 24)))
                  | 25u | (432u << 6) | (0u << 16) | (1u << 22) | (9u << 24);
    RCC_CR |= 1u << 24;                                  /* PLLON */

    /* Over-drive (RM0385 4.1.4): ODEN, wait ODRDY; ODSWEN, wait ODSWRDY. */
    PWR_CR1 |= 1u << 16;
    while ((PWR_CSR1 & (1u << 16)) == 0u) {
    }
    PWR_CR1 |= 1u << 17;
    while ((PWR_CSR1 & (1u << 17)) == 0u) {
    }

    /* 7 wait states for 216 MHz at 2.7-3.6 V, plus ART accelerator and prefetch; read back before
     * raising the clock, as RM0385 3.3.2 asks. */
    FLASH_ACR = (FLASH_ACR & ~0xFu) | 7u | (1u << 8) | (1u << 9);
    while ((FLASH_ACR & 0xFu) != 7u) {
    }

    /* AHB /1, APB1 /4 (54 MHz max), APB2 /2 (108 MHz max), then switch SYSCLK to the PLL. */
    RCC_CFGR = (RCC_CFGR & ~((0xFu << 4) | (7u << 10) | (7u << 13))) | (5u << 10) | (4u << 13);
    while ((RCC_CR & (1u << 25)) == 0u) {                /* PLLRDY */
    }
    RCC_CFGR = (RCC_CFGR & ~3u) | 2u;                    /* SW = PLL */
    while (((RCC_CFGR >> 2) & 3u) != 2u) {               /* SWS = PLL */
    }
}

static void uart_init(void)
{
    RCC_AHB1ENR |= (1u << 0) | (1u << 1);                /* GPIOA, GPIOB */
    RCC_APB2ENR |= 1u << 4;                              /* USART1 */
    (void)RCC_APB2ENR;

    /* PA9 = USART1_TX: alternate function 7, high speed. */
    GPIO_MODER(GPIOA_BASE) = (GPIO_MODER(GPIOA_BASE) & ~(3u << 18)) | (2u << 18);
    GPIO_OSPEEDR(GPIOA_BASE) |= 3u << 18;
    GPIO_AFRH(GPIOA_BASE) = (GPIO_AFRH(GPIOA_BASE) & ~(0xFu << 4)) | (7u << 4);
    /* PB7 = USART1_RX: alternate function 7, pull-up so an unplugged line idles high. */
    GPIO_MODER(GPIOB_BASE) = (GPIO_MODER(GPIOB_BASE) & ~(3u << 14)) | (2u << 14);
    GPIO_PUPDR(GPIOB_BASE) = (GPIO_PUPDR(GPIOB_BASE) & ~(3u << 14)) | (1u << 14);
    GPIO_AFRL(GPIOB_BASE) = (GPIO_AFRL(GPIOB_BASE) & ~(0xFu << 28)) | (7u << 28);

    /* 8N1, oversampling by 16: BRR = f_PCLK2 / baud, rounded. USART1 clock = PCLK2 after reset
     * (RCC_DCKCFGR2.USART1SEL = 00). */
    USART_CR1 = 0u;
    USART_BRR = (APB2_HZ + MG_BOARD_BAUD / 2u) / MG_BOARD_BAUD;
    USART_CR1 = (1u << 3) | (1u << 2) | 1u;              /* TE | RE | UE */
}

void mg_board_init(void)
{
    mg_cortex_m_enable_caches();
    clock_init();
    uart_init();
    mg_dwt_counter_init();
}

void mg_board_putc(uint8_t byte)
{
    while ((USART_ISR & (1u << 7)) == 0u) {              /* TXE */
    }
    USART_TDR = byte;
}

uint8_t mg_board_getc(void)
{
    for (;;) {
        uint32_t isr = USART_ISR;
        if ((isr & (1u << 5)) != 0u) {                   /* RXNE */
            return (uint8_t)USART_RDR;
        }
        if ((isr & (1u << 3)) != 0u) {                   /* ORE would block reception: clear it */
            USART_ICR = 1u << 3;
        }
    }
}

void mg_board_exit(int code)
{
    (void)code;
    /* A real board has nowhere to go: wait for the host to reset or reflash it. */
    for (;;) {
        __asm__ volatile("wfi");
    }
}
