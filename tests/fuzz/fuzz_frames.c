/* fuzz_frames.c -- libFuzzer target: what a client can send as a text
 * frame. The envelope check and the JSON parser must answer every input
 * (no crash, no leak, no undefined behaviour under ASan+UBSan), and what
 * json_write_string writes must always parse back as JSON.
 *   make fuzz            (tests/fuzz/run.sh; clang with libFuzzer) */
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "envelope.h"
#include "json.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *s = (const char *)data;
    envelope_t env;
    envelope_parse(s, size, &env);
    envelope_clear(&env);

    buf_t b;
    buf_init(&b, 0);
    json_write_string(&b, s, size);
    if (json_parse(buf_content(&b), b.len, JSON_MAX_DEPTH, NULL, NULL, NULL) !=
        JSON_OK)
        __builtin_trap();
    buf_close(&b);
    return 0;
}
