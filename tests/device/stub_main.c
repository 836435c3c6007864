/*
 * stub_main.c: a minimal firmware main for the board tests, standing in for runtime_c/mg_harness.c.
 *
 * Boots the board, prints one line, runs the model once on a fixed input and prints the outputs in
 * hex, then exits:
 *   stub: boot <board model> arena <bytes>
 *   stub: rc=<status> layers=<ended>/<total> count=<counter ticks>
 *   stub: out=<hex bytes of every output, in order>
 *   stub: done
 * Inputs are zero, or byte i = 7 i + 3 with -DMG_STUB_PATTERN (for integer inputs).
 * With -DMG_STUB_FAULT=ADDR it reads ADDR right after the boot line instead, to exercise the board's
 * fault handler (which prints "FAULT pc=... lr=... cfsr=... hfsr=..." and exits with code 3).
 */
#include <stdint.h>

#include "mg_board.h"
#include "mg_board_config.h"
#include "mg_model.h"

static uint32_t layers_begun;
static uint32_t layers_ended;

void mg_profile_layer_begin(uint32_t layer)
{
    (void)layer;
    ++layers_begun;
}

void mg_profile_layer_end(uint32_t layer)
{
    (void)layer;
    ++layers_ended;
}

static void put_str(const char *s)
{
    while (*s != '\0') {
        mg_board_putc((uint8_t)*s++);
    }
}

static void put_dec(uint64_t value)
{
    char digits[21];
    int n = 0;
    do {
        digits[n++] = (char)('0' + (int)(value % 10u));
        value /= 10u;
    } while (value != 0u);
    while (n > 0) {
        mg_board_putc((uint8_t)digits[--n]);
    }
}

static void put_hex8(uint8_t byte)
{
    static const char hex[] = "0123456789abcdef";
    mg_board_putc((uint8_t)hex[byte >> 4]);
    mg_board_putc((uint8_t)hex[byte & 0xFu]);
}

int main(void)
{
    uint32_t i, j;
    uint64_t start, stop;
    int rc;

    mg_board_init();
    put_str("stub: boot " MG_BOARD_NAME " ");
    put_str(mg_model_name);
    put_str(" arena ");
    put_dec(mg_model_arena_size);
    put_str("\n");
#ifdef MG_STUB_FAULT
    (void)*(volatile uint32_t *)(uintptr_t)(MG_STUB_FAULT);
#endif

    for (i = 0u; i < mg_model_num_inputs; ++i) {
        uint8_t *input = mg_model_arena + mg_model_input_offsets[i];
        for (j = 0u; j < mg_model_input_bytes[i]; ++j) {
#ifdef MG_STUB_PATTERN
            input[j] = (uint8_t)(j * 7u + 3u);
#else
            input[j] = 0u;
#endif
        }
    }
    start = mg_board_counter();
    rc = mg_model_invoke();
    stop = mg_board_counter();

    put_str("stub: rc=");
    put_dec((uint64_t)rc);
    put_str(" layers=");
    put_dec(layers_ended);
    put_str("/");
    put_dec(mg_model_num_layers);
    put_str(" count=");
    put_dec(stop - start);
    put_str("\nstub: out=");
    for (i = 0u; i < mg_model_num_outputs; ++i) {
        const uint8_t *output = mg_model_arena + mg_model_output_offsets[i];
        for (j = 0u; j < mg_model_output_bytes[i]; ++j) {
            put_hex8(output[j]);
        }
    }
    put_str("\nstub: done\n");
    mg_board_exit(rc == 0 && layers_begun == layers_ended ? 0 : 1);
    return rc;
}
