// SPDX-License-Identifier: MIT
/* migration/section.c: the registry and the field helpers. */
#include <criterion/criterion.h>
#include <errno.h>
#include <libfdt.h>
#include <string.h>

#include "migration/section.h"

static int nop_save(void *opaque, void *fdt)
{
	return 0;
}

static int nop_load(void *opaque, const void *fdt, int node, uint32_t version)
{
	return 0;
}

static const struct mig_section_ops nop_ops = { .save = nop_save, .load = nop_load };

static struct mig_registry reg;

static void setup(void)
{
	mig__registry_init(&reg);
}

static void teardown(void)
{
	mig__registry_release(&reg);
}

TestSuite(section, .init = setup, .fini = teardown);

Test(section, register_lookup_and_order)
{
	int a, b, c;
	const struct mig_section *s;
	const char *order[] = { "serial", "virtio-net", "virtio-net" };
	uint32_t inst[] = { 0, 0, 1 };
	size_t i = 0;

	cr_assert_eq(mig__section_register(&reg, "serial", 0, 1, 1, &nop_ops, &a), 0);
	cr_assert_eq(mig__section_register(&reg, "virtio-net", 0, 3, 2, &nop_ops, &b), 0);
	cr_assert_eq(mig__section_register(&reg, "virtio-net", 1, 3, 2, &nop_ops, &c), 0);
	cr_assert_eq(mig__section_count(&reg), 3);

	s = mig__section_find(&reg, "virtio-net", 1);
	cr_assert_not_null(s);
	cr_assert_eq(s->opaque, &c);
	cr_assert_eq(s->version, 3);
	cr_assert_eq(s->min_version, 2);
	cr_assert_eq(mig__section_index(&reg, "virtio-net", 0), 1);
	cr_assert_null(mig__section_find(&reg, "virtio-net", 2));
	cr_assert_null(mig__section_find(&reg, "virtio-blk", 0));
	cr_assert_eq(mig__section_index(&reg, "nope", 0), -ENOENT);

	mig_for_each_section(&reg, s) {
		cr_assert_str_eq(s->name, order[i]);
		cr_assert_eq(s->instance, inst[i]);
		cr_assert_eq(mig__section_at(&reg, i), s);
		i++;
	}
	cr_assert_eq(i, 3);
	cr_assert_null(mig__section_at(&reg, 3));
}

Test(section, many_sections_grow_the_table)
{
	for (uint32_t i = 0; i < 100; i++)
		cr_assert_eq(mig__section_register(&reg, "dev", i, 1, 1, &nop_ops, NULL), 0);
	cr_assert_eq(mig__section_count(&reg), 100);
	for (uint32_t i = 0; i < 100; i++)
		cr_assert_eq(mig__section_index(&reg, "dev", i), (int)i);
}

Test(section, duplicates_refused)
{
	cr_assert_eq(mig__section_register(&reg, "rtc", 0, 1, 1, &nop_ops, NULL), 0);
	cr_assert_eq(mig__section_register(&reg, "rtc", 0, 2, 1, &nop_ops, NULL), -EEXIST);
	cr_assert(strstr(mig__error(&reg), "'rtc' instance 0 is already registered"), "%s",
		  mig__error(&reg));
	cr_assert_eq(mig__section_count(&reg), 1);
	cr_assert_eq(mig__section_find(&reg, "rtc", 0)->version, 1);
	/* another instance of the same model is fine */
	cr_assert_eq(mig__section_register(&reg, "rtc", 1, 1, 1, &nop_ops, NULL), 0);
}

Test(section, bad_arguments_refused)
{
	static const struct mig_section_ops no_load = { .save = nop_save };
	char longname[80];

	memset(longname, 'a', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = '\0';

	cr_assert_eq(mig__section_register(&reg, "", 0, 1, 1, &nop_ops, NULL), -EINVAL);
	cr_assert_eq(mig__section_register(&reg, NULL, 0, 1, 1, &nop_ops, NULL), -EINVAL);
	cr_assert_eq(mig__section_register(&reg, "a b", 0, 1, 1, &nop_ops, NULL), -EINVAL);
	cr_assert_eq(mig__section_register(&reg, "a/b", 0, 1, 1, &nop_ops, NULL), -EINVAL);
	cr_assert(strstr(mig__error(&reg), "invalid"));
	cr_assert_eq(mig__section_register(&reg, longname, 0, 1, 1, &nop_ops, NULL), -EINVAL);
	longname[MIG_NAME_MAX - 1] = '\0';
	cr_assert_eq(mig__section_register(&reg, longname, 0, 1, 1, &nop_ops, NULL), 0);

	cr_assert_eq(mig__section_register(&reg, "x", 0, 0, 0, &nop_ops, NULL), -EINVAL);
	cr_assert_eq(mig__section_register(&reg, "x", 0, 2, 3, &nop_ops, NULL), -EINVAL);
	cr_assert(strstr(mig__error(&reg), "bad version window 3..2"), "%s", mig__error(&reg));
	cr_assert_eq(mig__section_register(&reg, "x", 0, 2, 0, &nop_ops, NULL), -EINVAL);
	cr_assert_eq(mig__section_register(&reg, "x", 0, 1, 1, NULL, NULL), -EINVAL);
	cr_assert_eq(mig__section_register(&reg, "x", 0, 1, 1, &no_load, NULL), -EINVAL);
	cr_assert_eq(mig__section_count(&reg), 1);
}

Test(section, version_window)
{
	const struct mig_section *s;

	cr_assert_eq(mig__section_register(&reg, "virtio-net", 2, 5, 3, &nop_ops, NULL), 0);
	s = mig__section_find(&reg, "virtio-net", 2);
	cr_assert_not_null(s);

	for (uint32_t v = 3; v <= 5; v++) {
		mig__clear_error(&reg);
		cr_assert_eq(mig__section_accepts(&reg, s, v), 0, "version %u", v);
		cr_assert_str_empty(mig__error(&reg));
	}

	cr_assert_eq(mig__section_accepts(&reg, s, 6), -EINVAL);
	cr_assert(strstr(mig__error(&reg), "'virtio-net' instance 2"), "%s", mig__error(&reg));
	cr_assert(strstr(mig__error(&reg), "version 6, newer than this build's version 5"), "%s",
		  mig__error(&reg));

	cr_assert_eq(mig__section_accepts(&reg, s, 2), -EINVAL);
	cr_assert(strstr(mig__error(&reg), "version 2, older"), "%s", mig__error(&reg));
	cr_assert(strstr(mig__error(&reg), "accepts 3..5"), "%s", mig__error(&reg));
	cr_assert_eq(mig__section_accepts(&reg, s, 0), -EINVAL);
}

Test(section, unregister)
{
	cr_assert_eq(mig__section_register(&reg, "a", 0, 1, 1, &nop_ops, NULL), 0);
	cr_assert_eq(mig__section_register(&reg, "b", 0, 1, 1, &nop_ops, NULL), 0);
	cr_assert_eq(mig__section_register(&reg, "c", 0, 1, 1, &nop_ops, NULL), 0);
	cr_assert_eq(mig__section_unregister(&reg, "b", 0), 0);
	cr_assert_eq(mig__section_unregister(&reg, "b", 0), -ENOENT);
	cr_assert_eq(mig__section_count(&reg), 2);
	cr_assert_str_eq(mig__section_at(&reg, 0)->name, "a");
	cr_assert_str_eq(mig__section_at(&reg, 1)->name, "c");
	/* the name is free again */
	cr_assert_eq(mig__section_register(&reg, "b", 0, 1, 1, &nop_ops, NULL), 0);
}

/* ---- field helpers on a tree built in sequential-write mode ---- */

static void build_tree(void *buf, int size)
{
	static const uint8_t mac[6] = { 0x52, 0x54, 0, 0x12, 0x34, 0x56 };

	cr_assert_eq(fdt_create(buf, size), 0);
	cr_assert_eq(fdt_finish_reservemap(buf), 0);
	cr_assert_eq(fdt_begin_node(buf, ""), 0);
	cr_assert_eq(mig__put_u32(buf, "status", 0xdeadbeef), 0);
	cr_assert_eq(mig__put_u64(buf, "features", 0x0123456789abcdefull), 0);
	cr_assert_eq(mig__put_bytes(buf, "mac", mac, sizeof(mac)), 0);
	cr_assert_eq(mig__put_str(buf, "label", "eth0"), 0);
	cr_assert_eq(mig__begin_node(buf, "queue@1"), 0);
	cr_assert_eq(mig__put_u32(buf, "size", 256), 0);
	cr_assert_eq(mig__end_node(buf), 0);
	cr_assert_eq(fdt_end_node(buf), 0);
	cr_assert_eq(fdt_finish(buf), 0);
	cr_assert_eq(fdt_check_full(buf, fdt_totalsize(buf)), 0);
}

Test(section, field_helpers_round_trip)
{
	uint64_t buf[512];
	uint32_t u32 = 0;
	uint64_t u64 = 0;
	uint8_t mac[6] = { 0 };
	char label[16];
	const void *blob;
	size_t len;
	int q;

	build_tree(buf, sizeof(buf));
	cr_assert_eq(mig__get_u32(buf, 0, "status", &u32), 0);
	cr_assert_eq(u32, 0xdeadbeef);
	cr_assert_eq(mig__get_u64(buf, 0, "features", &u64), 0);
	cr_assert_eq(u64, 0x0123456789abcdefull);
	cr_assert_eq(mig__get_bytes(buf, 0, "mac", mac, sizeof(mac)), 0);
	cr_assert_eq(mac[0], 0x52);
	cr_assert_eq(mac[5], 0x56);
	cr_assert_eq(mig__get_str(buf, 0, "label", label, sizeof(label)), 0);
	cr_assert_str_eq(label, "eth0");
	cr_assert_eq(mig__get_blob(buf, 0, "mac", &blob, &len), 0);
	cr_assert_eq(len, 6);
	q = mig__get_node(buf, 0, "queue@1");
	cr_assert_geq(q, 0);
	cr_assert_eq(mig__get_u32(buf, q, "size", &u32), 0);
	cr_assert_eq(u32, 256);
}

Test(section, field_helpers_required_default_and_size)
{
	uint64_t buf[512];
	uint32_t u32 = 7;
	uint64_t u64 = 9;
	uint8_t b[4] = { 1, 2, 3, 4 };
	static const uint8_t dflt[4] = { 0xa, 0xb, 0xc, 0xd };
	char small[3];

	build_tree(buf, sizeof(buf));

	mig__clear_field_error();
	cr_assert_eq(mig__get_u32(buf, 0, "missing", &u32), -ENOENT);
	cr_assert_eq(u32, 7, "value untouched on error");
	cr_assert(strstr(mig__field_error(), "required field 'missing' is missing"), "%s",
		  mig__field_error());
	cr_assert_eq(mig__get_u64(buf, 0, "missing", &u64), -ENOENT);
	cr_assert_eq(mig__get_node(buf, 0, "queue@9"), -ENOENT);

	cr_assert_eq(mig__get_u32_or(buf, 0, "missing", &u32, 42), 0);
	cr_assert_eq(u32, 42);
	cr_assert_eq(mig__get_u64_or(buf, 0, "missing", &u64, 1ull << 40), 0);
	cr_assert_eq(u64, 1ull << 40);
	cr_assert_eq(mig__get_u32_or(buf, 0, "status", &u32, 42), 0);
	cr_assert_eq(u32, 0xdeadbeef, "present field wins over the default");
	cr_assert_eq(mig__get_bytes_or(buf, 0, "missing", b, sizeof(b), dflt), 0);
	cr_assert_eq(memcmp(b, dflt, 4), 0);
	cr_assert_eq(mig__get_bytes_or(buf, 0, "missing", b, sizeof(b), NULL), 0);
	cr_assert_eq(b[0] | b[1] | b[2] | b[3], 0);

	/* wrong sizes are corruption, required or not */
	cr_assert_eq(mig__get_u32(buf, 0, "features", &u32), -EBADMSG);
	cr_assert(strstr(mig__field_error(), "'features' has 8 bytes, expected 4"), "%s",
		  mig__field_error());
	cr_assert_eq(mig__get_u32_or(buf, 0, "features", &u32, 1), -EBADMSG);
	cr_assert_eq(mig__get_u64(buf, 0, "status", &u64), -EBADMSG);
	cr_assert_eq(mig__get_bytes(buf, 0, "mac", b, sizeof(b)), -EBADMSG);
	cr_assert_eq(mig__get_bytes_or(buf, 0, "mac", b, sizeof(b), NULL), -EBADMSG);
	cr_assert_eq(mig__get_str(buf, 0, "label", small, sizeof(small)), -EBADMSG);
	cr_assert_eq(mig__get_str(buf, 0, "mac", small, sizeof(small)), -EBADMSG);
}

Test(section, put_reports_nospace)
{
	uint64_t buf[16]; /* 128 bytes: a header and little more */
	uint8_t big[256] = { 0 };

	cr_assert_eq(fdt_create(buf, sizeof(buf)), 0);
	cr_assert_eq(fdt_finish_reservemap(buf), 0);
	cr_assert_eq(fdt_begin_node(buf, ""), 0);
	cr_assert_eq(mig__put_bytes(buf, "big", big, sizeof(big)), -ENOSPC);
}
