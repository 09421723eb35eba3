/*
 * embedded.h - files compiled into the binary: the collection schema and the
 * store's SQL migrations, so that a bare ./pocketctl runs on its defaults.
 */
#ifndef POCKETCTL_EMBEDDED_H
#define POCKETCTL_EMBEDDED_H

#include <stddef.h>

struct embedded_file {
	const char *name;   /* "schema/migrations/0001_init.sql" */
	const char *data;   /* NUL-terminated */
	const char *end;    /* data + length (the NUL) */
};

/*
 * EMBED(sym, "path"): put the file at path (relative to the top of the
 * checkout, where the compiler runs) into .rodata as sym[], ending at
 * sym_end[] with a NUL byte after it. The object that uses it must depend
 * on the file in the Makefile, since the compiler does not see .incbin.
 */
#define EMBED(sym, path)                                             \
	__asm__(".section .rodata\n"                                 \
		".global " #sym "\n"                                 \
		".balign 16\n" #sym ":\n"                            \
		".incbin \"" path "\"\n"                             \
		".global " #sym "_end\n" #sym "_end:\n"              \
		".byte 0\n"                                          \
		".previous\n");                                      \
	extern const char sym[], sym##_end[]

/* Length in bytes of an embedded file, without the NUL. */
#define EMBEDDED_LEN(f) ((size_t)((f)->end - (f)->data))

/* schema/collections.json */
extern const struct embedded_file embedded_schema;

/* schema/migrations/NNNN_*.sql in order; migration i brings the store
 * from level i to level i + 1. */
extern const struct embedded_file embedded_migrations[];
extern const size_t embedded_nmigrations;

#endif
