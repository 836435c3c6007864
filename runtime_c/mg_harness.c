/*
 * mg_harness.c: the measurement firmware's main loop.
 *
 * The host drives the board over the UART with a small framed protocol (microgen/device/protocol.py
 * is the other half; keep the two in step and bump MG_PROTO_VERSION on any change):
 *
 *   frame = A5 5A | version | type | seq | len (u16 LE) | payload[len] | crc (u16 LE)
 *
 * The CRC is CRC-16/CCITT-FALSE (poly 0x1021, init 0xFFFF) over version..payload. Every command gets
 * exactly one reply with the command's seq: its type | 0x80 on success, or MG_T_ERROR with an error
 * code. The board speaks first with a MG_T_BOOT frame (seq 0). All integers are little-endian.
 *
 * Garbage between frames is skipped while hunting for the start marker; a length above
 * MG_MAX_PAYLOAD, a bad CRC or a foreign version gets an error frame and the hunt starts again. A
 * partial frame leaves the board waiting for bytes: the host times out and sends MG_MAX_FRAME zero
 * bytes, which complete any partial frame (bad CRC -> one error frame) and are then skipped.
 *
 * Only mg_board.h and mg_model.h are used. The board build may define:
 *   MG_COUNTER_UNIT   0 = core cycles, 1 = emulated instructions (QEMU -icount)
 *   MG_COUNTER_SCALE_NUM, MG_COUNTER_SCALE_DEN
 *                     units per count of mg_board_counter(), as a fraction: 40/1 for SysTick at 25 MHz
 *                     under -icount shift=0, 125/4 (31.25) at 32 MHz, 1/1 for cycle counters
 *   MG_MAX_LAYERS     layers whose cost is kept (later layers are timed into the last slot)
 *   MG_HARNESS_TEST   failure modes for the host's fault tests only: 1 = RUN first loads from
 *                     MG_HARNESS_FAULT_ADDR (a HardFault / access fault), 2 = silent after the boot
 *                     banner, 3 = silent from reset (a board that never boots)
 */
#include <stddef.h>
#include <stdint.h>

#include "mg_board.h"
#include "mg_model.h"

#ifndef MG_COUNTER_UNIT
#define MG_COUNTER_UNIT 0
#endif
#ifndef MG_COUNTER_SCALE_NUM
#define MG_COUNTER_SCALE_NUM 1
#endif
#ifndef MG_COUNTER_SCALE_DEN
#define MG_COUNTER_SCALE_DEN 1
#endif
#ifndef MG_MAX_LAYERS
#define MG_MAX_LAYERS 128
#endif
#ifndef MG_HARNESS_TEST
#define MG_HARNESS_TEST 0
#endif
#ifndef MG_HARNESS_FAULT_ADDR
#define MG_HARNESS_FAULT_ADDR 0xFFFFFFF0u
#endif

#define MG_PROTO_VERSION 1
#define MG_SYNC0 0xA5u
#define MG_SYNC1 0x5Au
#define MG_MAX_PAYLOAD 256u
#define MG_HEADER 7u
#define MG_MAX_FRAME (MG_HEADER + MG_MAX_PAYLOAD + 2u)

/* Command types (host -> board); replies carry type | MG_T_REPLY. */
enum {
    MG_T_PING = 0x01,
    MG_T_INFO = 0x02,
    MG_T_LOAD_INPUT = 0x03,
    MG_T_RUN = 0x04,
    MG_T_READ_OUTPUT = 0x05,
    MG_T_READ_PROFILE = 0x06,
    MG_T_EXIT = 0x07,
    MG_T_BOOT = 0x40,
    MG_T_ERROR = 0x7F,
    MG_T_REPLY = 0x80
};

/* Error codes carried by MG_T_ERROR frames: code u8, offending type u8, then ASCII text. */
enum {
    MG_E_CRC = 1,
    MG_E_LENGTH = 2,
    MG_E_VERSION = 3,
    MG_E_COMMAND = 4,
    MG_E_ARGUMENT = 5
};

/* Coarsest counter tick (in sub-units) the phase lock handles (see mg_phase_lock). */
#define MG_TICK_MAX 1024u
#define MG_NO_LOCK 0xFFFFFFFFu

static uint8_t mg_rx[MG_MAX_PAYLOAD];
static uint8_t mg_tx[MG_MAX_PAYLOAD];

/*
 * Internally every time is in sub-units: counts * MG_COUNTER_SCALE_NUM, i.e. MG_COUNTER_SCALE_DEN
 * sub-units per unit, so a fractional scale stays exact. Replies convert to units (mg_to_units).
 */

/* Per-layer cost of the last run, in sub-units, harness overhead removed. */
static uint64_t mg_layer_cost[MG_MAX_LAYERS];
static uint64_t mg_layer_start;
static uint32_t mg_layers_timed;

/* Measured at boot, in sub-units: the harness cost inside one layer's window (from the counter read in
 * begin to the one in end), the full cost of one begin+end pair seen from outside, and the cost of two
 * back-to-back counter reads. */
static uint64_t mg_hook_inner;
static uint64_t mg_hook_pair;
static uint64_t mg_read_pair;

/* Phase lock state: the tick length in sub-units and the sled length that makes the vernier period
 * 1 (mod tick). */
static uint64_t mg_tick;
static uint32_t mg_lock_sled = MG_NO_LOCK;
static uint64_t mg_lock_edge;

static uint64_t mg_now(void)
{
    return mg_board_counter() * (uint64_t)MG_COUNTER_SCALE_NUM;
}

static uint64_t mg_to_units(uint64_t sub)
{
    return (sub + MG_COUNTER_SCALE_DEN / 2u) / MG_COUNTER_SCALE_DEN;
}

/* ---- Profiling hooks, called by the model library around every layer. ---- */

void mg_profile_layer_begin(uint32_t layer)
{
    (void)layer;
    mg_layer_start = mg_now();
}

void mg_profile_layer_end(uint32_t layer)
{
    const uint64_t now = mg_now();
    const uint32_t slot = layer < MG_MAX_LAYERS ? layer : MG_MAX_LAYERS - 1u;
    const uint64_t raw = now - mg_layer_start;

    mg_layer_cost[slot] = raw > mg_hook_inner ? raw - mg_hook_inner : 0u;
    mg_layers_timed++;
}

/* ---- Byte helpers ---- */

static uint16_t mg_crc16(uint16_t crc, const uint8_t *data, uint32_t n)
{
    uint32_t i;
    int bit;

    for (i = 0; i < n; i++) {
        crc ^= (uint16_t)((uint16_t)data[i] << 8);
        for (bit = 0; bit < 8; bit++) {
            crc = (crc & 0x8000u) ? (uint16_t)((crc << 1) ^ 0x1021u) : (uint16_t)(crc << 1);
        }
    }
    return crc;
}

static void mg_put_u16(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

static void mg_put_u32(uint8_t *p, uint32_t v)
{
    mg_put_u16(p, v);
    mg_put_u16(p + 2, v >> 16);
}

static void mg_put_u64(uint8_t *p, uint64_t v)
{
    mg_put_u32(p, (uint32_t)v);
    mg_put_u32(p + 4, (uint32_t)(v >> 32));
}

static uint32_t mg_get_u16(const uint8_t *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8);
}

static uint32_t mg_get_u32(const uint8_t *p)
{
    return mg_get_u16(p) | (mg_get_u16(p + 2) << 16);
}

/* ---- Framing ---- */

static void mg_send(uint8_t type, uint8_t seq, const uint8_t *payload, uint32_t len)
{
    uint8_t head[MG_HEADER];
    uint16_t crc;
    uint32_t i;

    head[0] = MG_SYNC0;
    head[1] = MG_SYNC1;
    head[2] = MG_PROTO_VERSION;
    head[3] = type;
    head[4] = seq;
    mg_put_u16(head + 5, len);
    crc = mg_crc16(0xFFFFu, head + 2, MG_HEADER - 2u);
    crc = mg_crc16(crc, payload, len);
    for (i = 0; i < MG_HEADER; i++) {
        mg_board_putc(head[i]);
    }
    for (i = 0; i < len; i++) {
        mg_board_putc(payload[i]);
    }
    mg_board_putc((uint8_t)crc);
    mg_board_putc((uint8_t)(crc >> 8));
}

static void mg_send_error(uint8_t seq, uint8_t code, uint8_t type, const char *text)
{
    uint32_t n = 2;

    mg_tx[0] = code;
    mg_tx[1] = type;
    while (*text != '\0' && n < MG_MAX_PAYLOAD) {
        mg_tx[n++] = (uint8_t)*text++;
    }
    mg_send(MG_T_ERROR, seq, mg_tx, n);
}

/*
 * Blocks until one well-formed frame arrived; its payload is in mg_rx. Malformed frames are answered
 * with an error frame and skipped. Returns the payload length; *type and *seq receive the header.
 */
static uint32_t mg_receive(uint8_t *type, uint8_t *seq)
{
    for (;;) {
        uint8_t head[MG_HEADER];
        uint32_t len, i;
        uint16_t crc;
        uint8_t b = mg_board_getc();

        /* Hunt for A5 5A; "A5 A5 5A" must still sync, so a repeated A5 keeps the hunt at step two. */
        if (b != MG_SYNC0) {
            continue;
        }
        do {
            b = mg_board_getc();
        } while (b == MG_SYNC0);
        if (b != MG_SYNC1) {
            continue;
        }
        for (i = 2; i < MG_HEADER; i++) {
            head[i] = mg_board_getc();
        }
        len = mg_get_u16(head + 5);
        if (len > MG_MAX_PAYLOAD) {
            mg_send_error(head[4], MG_E_LENGTH, head[3], "length above the maximum payload");
            continue;
        }
        for (i = 0; i < len; i++) {
            mg_rx[i] = mg_board_getc();
        }
        crc = (uint16_t)mg_board_getc();
        crc = (uint16_t)(crc | ((uint16_t)mg_board_getc() << 8));
        if (crc != mg_crc16(mg_crc16(0xFFFFu, head + 2, MG_HEADER - 2u), mg_rx, len)) {
            mg_send_error(head[4], MG_E_CRC, head[3], "bad CRC");
            continue;
        }
        if (head[2] != MG_PROTO_VERSION) {
            mg_send_error(head[4], MG_E_VERSION, head[3], "protocol version mismatch");
            continue;
        }
        *type = head[3];
        *seq = head[4];
        return len;
    }
}

/* ---- Phase lock ----
 *
 * On QEMU the counter advances in ticks of several units (SysTick: 40 instructions). Host I/O makes
 * the phase of the tick at the start of a run random, so per-layer figures would jitter by one tick.
 * The vernier loop below runs iterations of (sled of k nops, counter read) lasting m*tick + 1
 * sub-units: each read lands one sub-unit later within its tick, and the iteration that crosses one
 * extra edge ends exactly at the start of a tick. From there on everything up to the end of the run
 * is deterministic. Boards whose counter ticks every unit (cycle counters, mcycle) skip all this.
 */

#define MG_NOP() __asm__ volatile("nop")

/* Executes k nops: a loop of 32-nop blocks, then a jump into a 32-nop sled. The cost is not assumed
 * to be linear in k: mg_phase_setup measures every k it tries. */
static void __attribute__((noinline)) mg_sled(uint32_t k)
{
    uint32_t blocks;

    for (blocks = k >> 5; blocks != 0u; blocks--) {
        MG_NOP(); MG_NOP(); MG_NOP(); MG_NOP(); MG_NOP(); MG_NOP(); MG_NOP(); MG_NOP();
        MG_NOP(); MG_NOP(); MG_NOP(); MG_NOP(); MG_NOP(); MG_NOP(); MG_NOP(); MG_NOP();
        MG_NOP(); MG_NOP(); MG_NOP(); MG_NOP(); MG_NOP(); MG_NOP(); MG_NOP(); MG_NOP();
        MG_NOP(); MG_NOP(); MG_NOP(); MG_NOP(); MG_NOP(); MG_NOP(); MG_NOP(); MG_NOP();
    }
    switch (k & 31u) {
    case 31: MG_NOP(); /* fall through */
    case 30: MG_NOP(); /* fall through */
    case 29: MG_NOP(); /* fall through */
    case 28: MG_NOP(); /* fall through */
    case 27: MG_NOP(); /* fall through */
    case 26: MG_NOP(); /* fall through */
    case 25: MG_NOP(); /* fall through */
    case 24: MG_NOP(); /* fall through */
    case 23: MG_NOP(); /* fall through */
    case 22: MG_NOP(); /* fall through */
    case 21: MG_NOP(); /* fall through */
    case 20: MG_NOP(); /* fall through */
    case 19: MG_NOP(); /* fall through */
    case 18: MG_NOP(); /* fall through */
    case 17: MG_NOP(); /* fall through */
    case 16: MG_NOP(); /* fall through */
    case 15: MG_NOP(); /* fall through */
    case 14: MG_NOP(); /* fall through */
    case 13: MG_NOP(); /* fall through */
    case 12: MG_NOP(); /* fall through */
    case 11: MG_NOP(); /* fall through */
    case 10: MG_NOP(); /* fall through */
    case 9: MG_NOP(); /* fall through */
    case 8: MG_NOP(); /* fall through */
    case 7: MG_NOP(); /* fall through */
    case 6: MG_NOP(); /* fall through */
    case 5: MG_NOP(); /* fall through */
    case 4: MG_NOP(); /* fall through */
    case 3: MG_NOP(); /* fall through */
    case 2: MG_NOP(); /* fall through */
    case 1: MG_NOP(); /* fall through */
    default: break;
    }
}

/*
 * n iterations of (sled of k nops, counter read); returns the sub-units from the first read to the
 * last. A step of exactly `edge` sub-units is a hit; the loop stops at the second hit. The first hit may come
 * from the odd first iteration (entry instead of loop-back); every later iteration is regular, so the
 * second hit is exact. Measuring (edge = MG_NO_EDGE, never hit) and locking run the same instructions per
 * iteration, so the period measured is the period locked with.
 */
#define MG_NO_EDGE UINT64_MAX

static uint64_t __attribute__((noinline)) mg_vernier(uint32_t k, uint32_t n, uint64_t edge)
{
    const uint64_t start = mg_now();
    uint64_t prev = start;
    uint32_t i, hits = 0;

    for (i = 0; i < n; i++) {
        uint64_t now;

        mg_sled(k);
        now = mg_now();
        /* Counted without a branch, so a hit iteration lasts as long as any other. */
        hits += (uint32_t)(now - prev == edge);
        if (hits == 2u) {
            return now - start;
        }
        prev = now;
    }
    return prev - start;
}

static uint64_t mg_gcd(uint64_t a, uint64_t b)
{
    while (b != 0u) {
        const uint64_t t = a % b;
        a = b;
        b = t;
    }
    return a;
}

/* Finds the counter's tick (gcd of observed steps, in sub-units) and, if it is coarser than one
 * sub-unit, a sled length whose vernier period is 1 (mod tick). Runs once at boot. */
static void mg_phase_setup(void)
{
    uint64_t prev = mg_now(), tick = 0;
    uint32_t seen = 0, guard = 0, k;

    /* The first step is skipped: a counter just started may jump from its reset value. */
    while (seen < 9u && guard < 100000u) {
        const uint64_t now = mg_now();
        if (now != prev) {
            tick = seen > 0u ? mg_gcd(tick, now - prev) : 0u;
            prev = now;
            seen++;
        }
        guard++;
    }
    mg_tick = tick;
    if (tick <= 1u || tick > MG_TICK_MAX) {
        return;
    }
    /* Any k whose period hits the residue will do; the sled is not assumed linear in k. */
    for (k = 0; k < 2u * (uint32_t)tick + 64u; k++) {
        /* 4*tick iterations: the total is n*period +- one tick, so the rounded mean is exact. */
        const uint32_t n = 4u * (uint32_t)tick;
        const uint64_t period = (mg_vernier(k, n, MG_NO_EDGE) + n / 2u) / n;
        if (period > tick && period % tick == 1u) {
            mg_lock_sled = k;
            mg_lock_edge = (period / tick + 1u) * tick;
            return;
        }
    }
}

/* Waits for the start of a tick (see above); a no-op on boards whose counter ticks every unit. */
static void mg_phase_lock(void)
{
    if (mg_lock_sled != MG_NO_LOCK) {
        (void)mg_vernier(mg_lock_sled, 3u * (uint32_t)mg_tick + 3u, mg_lock_edge);
    }
}

/* ---- Overhead calibration: averages over many iterations, so coarse ticks do not matter. ---- */

#define MG_CAL_N 256u

static uint64_t mg_mean(uint64_t t0, uint64_t t1)
{
    return (t1 - t0 + MG_CAL_N / 2u) / MG_CAL_N;
}

static void mg_calibrate(void)
{
    uint64_t t0, loop, reads, pairs;
    uint32_t i;

    mg_phase_lock();
    t0 = mg_now();
    for (i = 0; i < MG_CAL_N; i++) {
        __asm__ volatile("");
    }
    loop = mg_mean(t0, mg_now());

    mg_phase_lock();
    t0 = mg_now();
    for (i = 0; i < MG_CAL_N; i++) {
        (void)mg_now();
    }
    reads = mg_mean(t0, mg_now());

    mg_phase_lock();
    t0 = mg_now();
    for (i = 0; i < MG_CAL_N; i++) {
        mg_profile_layer_begin(0);
        mg_profile_layer_end(0);
    }
    pairs = mg_mean(t0, mg_now());

    /* A bracket of two reads costs about one full read; a layer window holds the tail of begin and
     * the head of end, which is one pair minus one read. */
    mg_read_pair = reads > loop ? reads - loop : 0u;
    mg_hook_pair = pairs > loop ? pairs - loop : 0u;
    mg_hook_inner = mg_hook_pair > mg_read_pair ? mg_hook_pair - mg_read_pair : 0u;
}

/* ---- Commands ---- */

static void mg_cmd_info(uint8_t seq)
{
    uint32_t n = 0, i, name_len = 0;

    mg_tx[n++] = MG_PROTO_VERSION;
    mg_tx[n++] = (uint8_t)MG_COUNTER_UNIT;
    mg_put_u16(mg_tx + n, MG_MAX_PAYLOAD);
    n += 2;
    mg_put_u32(mg_tx + n, (uint32_t)MG_COUNTER_SCALE_NUM);
    n += 4;
    mg_put_u32(mg_tx + n, (uint32_t)MG_COUNTER_SCALE_DEN);
    n += 4;
    mg_put_u32(mg_tx + n, mg_model_arena_size);
    n += 4;
    mg_put_u32(mg_tx + n, mg_model_num_inputs);
    n += 4;
    mg_put_u32(mg_tx + n, mg_model_num_outputs);
    n += 4;
    mg_put_u32(mg_tx + n, mg_model_num_layers);
    n += 4;
    mg_put_u32(mg_tx + n, MG_MAX_LAYERS);
    n += 4;
    mg_put_u32(mg_tx + n, (uint32_t)mg_tick);
    n += 4;
    mg_put_u32(mg_tx + n, (uint32_t)mg_to_units(mg_hook_inner));
    n += 4;
    mg_put_u32(mg_tx + n, (uint32_t)mg_to_units(mg_hook_pair));
    n += 4;
    if (n + 4u * (mg_model_num_inputs + mg_model_num_outputs) + 1u > MG_MAX_PAYLOAD) {
        mg_send_error(seq, MG_E_ARGUMENT, MG_T_INFO, "too many inputs and outputs for one INFO frame");
        return;
    }
    for (i = 0; i < mg_model_num_inputs; i++, n += 4) {
        mg_put_u32(mg_tx + n, mg_model_input_bytes[i]);
    }
    for (i = 0; i < mg_model_num_outputs; i++, n += 4) {
        mg_put_u32(mg_tx + n, mg_model_output_bytes[i]);
    }
    while (mg_model_name[name_len] != '\0' && n + 1u + name_len < MG_MAX_PAYLOAD) {
        name_len++;
    }
    mg_tx[n++] = (uint8_t)name_len;
    for (i = 0; i < name_len; i++) {
        mg_tx[n++] = (uint8_t)mg_model_name[i];
    }
    mg_send(MG_T_INFO | MG_T_REPLY, seq, mg_tx, n);
}

/* Checks that [offset, offset + len) lies inside a tensor of `bytes` bytes. */
static int mg_in_range(uint32_t offset, uint32_t len, uint32_t bytes)
{
    return offset <= bytes && len <= bytes - offset;
}

static void mg_cmd_load_input(uint8_t seq, uint32_t len)
{
    uint32_t index, offset, count, i;
    uint8_t *dst;

    if (len < 6u) {
        mg_send_error(seq, MG_E_ARGUMENT, MG_T_LOAD_INPUT, "payload shorter than its header");
        return;
    }
    index = mg_get_u16(mg_rx);
    offset = mg_get_u32(mg_rx + 2);
    count = len - 6u;
    if (index >= mg_model_num_inputs || !mg_in_range(offset, count, mg_model_input_bytes[index])) {
        mg_send_error(seq, MG_E_ARGUMENT, MG_T_LOAD_INPUT, "input index or range out of bounds");
        return;
    }
    dst = mg_model_arena + mg_model_input_offsets[index] + offset;
    for (i = 0; i < count; i++) {
        dst[i] = mg_rx[6u + i];
    }
    mg_send(MG_T_LOAD_INPUT | MG_T_REPLY, seq, mg_tx, 0);
}

static void mg_cmd_read_output(uint8_t seq, uint32_t len)
{
    uint32_t index, offset, count;
    const uint8_t *src;

    if (len != 8u) {
        mg_send_error(seq, MG_E_ARGUMENT, MG_T_READ_OUTPUT, "payload is not index, offset, length");
        return;
    }
    index = mg_get_u16(mg_rx);
    offset = mg_get_u32(mg_rx + 2);
    count = mg_get_u16(mg_rx + 6);
    if (index >= mg_model_num_outputs || count > MG_MAX_PAYLOAD ||
        !mg_in_range(offset, count, mg_model_output_bytes[index])) {
        mg_send_error(seq, MG_E_ARGUMENT, MG_T_READ_OUTPUT, "output index or range out of bounds");
        return;
    }
    src = mg_model_arena + mg_model_output_offsets[index] + offset;
    mg_send(MG_T_READ_OUTPUT | MG_T_REPLY, seq, src, count);
}

static void mg_cmd_read_profile(uint8_t seq, uint32_t len)
{
    const uint32_t kept = mg_model_num_layers < MG_MAX_LAYERS ? mg_model_num_layers : MG_MAX_LAYERS;
    uint32_t first, count, i;

    if (len != 6u) {
        mg_send_error(seq, MG_E_ARGUMENT, MG_T_READ_PROFILE, "payload is not first layer, count");
        return;
    }
    first = mg_get_u32(mg_rx);
    count = mg_get_u16(mg_rx + 4);
    if (count > MG_MAX_PAYLOAD / 8u || !mg_in_range(first, count, kept)) {
        mg_send_error(seq, MG_E_ARGUMENT, MG_T_READ_PROFILE, "layer range out of bounds");
        return;
    }
    for (i = 0; i < count; i++) {
        mg_put_u64(mg_tx + 8u * i, mg_to_units(mg_layer_cost[first + i]));
    }
    mg_send(MG_T_READ_PROFILE | MG_T_REPLY, seq, mg_tx, 8u * count);
}

static void mg_cmd_run(uint8_t seq)
{
    uint64_t t0, t1, raw, harness;
    uint32_t i;
    int status;

    for (i = 0; i < MG_MAX_LAYERS; i++) {
        mg_layer_cost[i] = 0u;
    }
    mg_layers_timed = 0;
    mg_phase_lock();
    t0 = mg_now();
#if MG_HARNESS_TEST == 1
    /* Test-only: a load from an address no board maps, to exercise the fault path end to end. */
    status = (int)*(volatile const uint32_t *)(uintptr_t)MG_HARNESS_FAULT_ADDR;
#endif
    status = mg_model_invoke();
    t1 = mg_now();
    raw = t1 - t0;
    harness = mg_read_pair + (uint64_t)mg_layers_timed * mg_hook_pair;

    mg_put_u32(mg_tx, (uint32_t)status);
    mg_put_u64(mg_tx + 4, mg_to_units(raw > harness ? raw - harness : 0u));
    mg_put_u32(mg_tx + 12, mg_layers_timed);
    mg_send(MG_T_RUN | MG_T_REPLY, seq, mg_tx, 16);
}

int main(void)
{
    uint32_t n = 0, i;

#if MG_HARNESS_TEST == 3
    for (;;) {
    }
#endif
    mg_board_init();
    mg_phase_setup();
    mg_calibrate();

    /* Boot banner: protocol version and model name, so the host knows the board is up. */
    mg_tx[n++] = MG_PROTO_VERSION;
    for (i = 0; mg_model_name[i] != '\0' && n < MG_MAX_PAYLOAD; i++) {
        mg_tx[n++] = (uint8_t)mg_model_name[i];
    }
    mg_send(MG_T_BOOT, 0, mg_tx, n);
#if MG_HARNESS_TEST == 2
    for (;;) {
    }
#endif

    for (;;) {
        uint8_t type, seq;
        const uint32_t len = mg_receive(&type, &seq);

        switch (type) {
        case MG_T_PING:
            mg_send(MG_T_PING | MG_T_REPLY, seq, mg_rx, len);
            break;
        case MG_T_INFO:
            mg_cmd_info(seq);
            break;
        case MG_T_LOAD_INPUT:
            mg_cmd_load_input(seq, len);
            break;
        case MG_T_RUN:
            mg_cmd_run(seq);
            break;
        case MG_T_READ_OUTPUT:
            mg_cmd_read_output(seq, len);
            break;
        case MG_T_READ_PROFILE:
            mg_cmd_read_profile(seq, len);
            break;
        case MG_T_EXIT:
            mg_send(MG_T_EXIT | MG_T_REPLY, seq, mg_tx, 0);
            mg_board_exit(len > 0u ? (int)mg_rx[0] : 0);
        default:
            mg_send_error(seq, MG_E_COMMAND, type, "unknown command");
            break;
        }
    }
}
