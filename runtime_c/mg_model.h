/*
 * mg_model.h: the generic view of one generated model, for the measurement firmware.
 *
 * `microgen build --board B` writes mg_model_glue.c, which defines these from the model's own prefixed
 * API (<name>.h), and compiles the model library with <NAME>_LAYER_BEGIN/END mapped to
 * mg_profile_layer_begin/end so the harness can time every layer.
 */
#ifndef MG_MODEL_H
#define MG_MODEL_H

#include <stdint.h>

extern const char mg_model_name[];
extern const uint32_t mg_model_arena_size;
extern uint8_t *const mg_model_arena;          /* the arena, statically allocated by the glue */

extern const uint32_t mg_model_num_inputs;
extern const uint32_t mg_model_input_offsets[];  /* byte offsets in the arena */
extern const uint32_t mg_model_input_bytes[];
extern const uint32_t mg_model_num_outputs;
extern const uint32_t mg_model_output_offsets[];
extern const uint32_t mg_model_output_bytes[];
extern const uint32_t mg_model_num_layers;

/* Runs one inference on the arena; returns 0 on success. */
int mg_model_invoke(void);

/* Called by the model library around every layer (provided by the harness). */
void mg_profile_layer_begin(uint32_t layer);
void mg_profile_layer_end(uint32_t layer);

#endif /* MG_MODEL_H */
