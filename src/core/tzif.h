/*
 * tzif: the UTC offset of a time zone at a given time, read from the bytes
 * of a compiled zone file (TZif, RFC 8536, versions 1 to 4) or from a POSIX
 * TZ rule string such as the one in a TZif footer.
 *
 * This is what the `clock` tool converts times with. Doing it here rather
 * than through setenv("TZ") and localtime_r keeps the process-wide TZ
 * variable untouched, so threads that format times never race with it; and
 * the code is pure, so it is tested with fixed times. Leap-second records
 * ("right/" zones) are ignored.
 */
#ifndef CHATPLANE_TZIF_H
#define CHATPLANE_TZIF_H

#include <stddef.h>
#include <stdint.h>

/* Sets *offset to the offset east of UTC, in seconds, in effect at unix time
 * t in the zone of the TZif data. Returns 0, or -1 when the data is not a
 * well-formed TZif file. */
int tzif_offset(const void *data, size_t len, int64_t t, int32_t *offset);

/* The same for a POSIX TZ string ("UTC0", "CET-1CEST,M3.5.0,M10.5.0/3",
 * "<+0330>-3:30"), with the RFC 8536 extensions (rule times from -167 to 167
 * hours). Returns 0, or -1 when the string does not parse. */
int tzif_posix_offset(const char *tz, int64_t t, int32_t *offset);

#endif
