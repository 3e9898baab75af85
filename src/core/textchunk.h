/*
 * textchunk: reads the common chunk of an OpenAI-compatible stream, the one
 * that carries only a piece of text, without building a JSON tree.
 *
 * Nearly every chunk a model streams is
 *   {"id":…,"object":"chat.completion.chunk",…,"choices":[{"index":0,
 *    "delta":{"content":"…"},"finish_reason":null}]}
 * and building a jansson tree for it (a dozen allocations, then freeing
 * them) was the largest single cost of relaying a token. This scanner
 * checks the whole text against the JSON grammar and extracts the content
 * in one pass, with no allocation beyond the output buffer. It also reads
 * the two chunks that end an answer: a finish reason (a string, or null)
 * and a usage object (its prompt_tokens and completion_tokens). Anything
 * that could mean more (tool calls, an error, several choices, a
 * duplicate key, a number or string jansson might judge differently)
 * makes it decline, and the caller parses the chunk in full. So for every
 * chunk it accepts, the full parse would have found valid JSON, the same
 * text, finish reason and counts, and nothing else.
 */
#ifndef CHATPLANE_CORE_TEXTCHUNK_H
#define CHATPLANE_CORE_TEXTCHUNK_H

#include <stddef.h>

#include "lib/buf.h"

/* Longest finish reason read here ("content_filter" is 14 bytes). */
#define TEXTCHUNK_FINISH_MAX 32

/* What a chunk says besides its text. */
typedef struct textchunk_end {
    /* choice 0's finish_reason: "" when null, absent or empty */
    char finish_reason[TEXTCHUNK_FINISH_MAX];
    /* usage.prompt_tokens and completion_tokens: -1 when absent, or not
     * a whole number of at least 0 (the full parse ignores those) */
    long long prompt_tokens, completion_tokens;
} textchunk_end;

/*
 * Reads data[0..len). Returns 1 when it is a plain chunk: the decoded
 * content (UTF-8, possibly empty) was appended to text and *end set.
 * Returns 0 when the chunk must be parsed in full; text is then unchanged.
 * Returns BUF_TOOBIG when the content does not fit the cap of text (text
 * unchanged).
 */
int textchunk_read(const char *data, size_t len, buf *text, textchunk_end *end);

/*
 * The shape of a stream's last plain chunk around its text: the bytes
 * before the opening quote of delta.content, the bytes after its closing
 * quote, and what the chunk said besides its text. A model repeats them in
 * every chunk of an answer (the same id, created and model; the same
 * finish_reason null), so a chunk that matches both byte for byte differs
 * from one already read in full only by its text: the JSON before the text
 * leaves the scanner in the same state, and after it, reading the same
 * bytes, it reaches the same end. Only the text is scanned then.
 */
#define TEXTCHUNK_MEMO_HEAD 320
#define TEXTCHUNK_MEMO_TAIL 96
typedef struct textchunk_memo {
    unsigned short head_len, tail_len; /* head_len 0: nothing kept yet */
    textchunk_end end;
    char head[TEXTCHUNK_MEMO_HEAD];
    char tail[TEXTCHUNK_MEMO_TAIL];
} textchunk_memo;

/*
 * textchunk_read with memo (zeroed before the stream's first chunk): a
 * chunk shaped as the one memo keeps has its text scanned alone; any other
 * is read in full, and when it is a plain chunk with a content string whose
 * surroundings fit memo, memo keeps them instead. The result is always
 * textchunk_read's for the same chunk.
 */
int textchunk_read_memo(const char *data, size_t len, buf *text, textchunk_end *end,
                        textchunk_memo *memo);

#endif
