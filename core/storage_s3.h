/* storage_s3.h - the parts of the S3 backend that are worth testing alone:
 * the multipart plan and the small XML scanner. The backend itself is
 * reached through storage.h (o7_storage_s3_ops). */
#ifndef O7_STORAGE_S3_H
#define O7_STORAGE_S3_H

#include "buf.h"
#include "result.h"

#include <stddef.h>
#include <stdint.h>

/** S3's limits: at most 10,000 parts, each at least 5 MiB (but the last)
 * and at most 5 GiB. */
#define O7_S3_MAX_PARTS 10000
#define O7_S3_MIN_PART (5LL * 1024 * 1024)
#define O7_S3_MAX_PART (5LL * 1024 * 1024 * 1024)
/** Parts per step of the plan: the part size doubles every this many. */
#define O7_S3_PARTS_PER_STEP 1000

/** The size of part number n (1-based) of an object whose total size is not
 * known in advance: base for parts 1..1000, 2*base for 1001..2000, and so on
 * (capped at 5 GiB). With the 8 MiB default, 10,000 parts hold about 8 TiB. */
long long o7_s3_part_size(long long base, int n);

/** How many parts an object of size bytes takes under that plan; -1 when it
 * would need more than 10,000 (the object cannot be stored). */
long o7_s3_plan_parts(long long base, unsigned long long size);

/** Finds the next <tag>value</tag> in xml[*pos..len) and appends its value,
 * XML entities decoded, to out (which it empties first). Returns 1 and moves
 * *pos past the element, or 0 when there is none. A self-closing <tag/>
 * gives "". */
int o7_s3_xml_next(const char *xml, size_t len, size_t *pos, const char *tag, o7_buf *out);

#endif
