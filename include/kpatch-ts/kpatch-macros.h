/* SPDX-License-Identifier: GPL-2.0 */
/*
 * kpatch-macros.h: what a patch author may write in a patch built by kpatch-build (kpatch-ts).
 * The macro names are kpatch's, so existing patches keep working; the sections they make are
 * ours (.kpatch_ts.*) and are read by the differ and the module generator, never linked as
 * ordinary data.
 *
 * #include "kpatch-macros.h" in the patched file (kpatch-build puts this header on the include
 * path of its builds).
 *
 * Callbacks, run by the livepatch core for the object (vmlinux or the module) whose source
 * defines them; see Documentation/livepatch/callbacks.rst:
 *   KPATCH_PRE_PATCH_CALLBACK(fn)     int fn(struct klp_object *obj): non-zero refuses the patch
 *   KPATCH_POST_PATCH_CALLBACK(fn)    void fn(struct klp_object *obj)
 *   KPATCH_PRE_UNPATCH_CALLBACK(fn)   void fn(struct klp_object *obj)
 *   KPATCH_POST_UNPATCH_CALLBACK(fn)  void fn(struct klp_object *obj)
 *
 * Differ directives:
 *   KPATCH_IGNORE_FUNCTION(fn)        changes to fn are not patched (e.g. a debug helper)
 *   KPATCH_IGNORE_SECTION("name")     changes to that section are ignored
 *   KPATCH_FORCE_UNSAFE(fn)           patch fn even though the differ would refuse it
 *                                     (e.g. an __init change the author knows is harmless)
 *
 * Shadow variables (data added to existing, dynamically allocated objects): use the kernel's
 * klp_shadow_get(), klp_shadow_alloc(), klp_shadow_get_or_alloc(), klp_shadow_free() and
 * klp_shadow_free_all() from <linux/livepatch.h>, included here; see
 * Documentation/livepatch/shadow-vars.rst.
 */
#ifndef _KPATCH_TS_MACROS_H
#define _KPATCH_TS_MACROS_H

#include <linux/compiler.h>
#include <linux/livepatch.h>

#define __KPTS_CAT2(a, b) a##b
#define __KPTS_CAT(a, b) __KPTS_CAT2(a, b)
#define __KPTS_UNIQUE(prefix) __KPTS_CAT(prefix, __COUNTER__)
#define __KPTS_SECTION(kind) __used __section(".kpatch_ts." kind) __aligned(8)

#define KPATCH_PRE_PATCH_CALLBACK(_fn) \
	static int (*__KPTS_UNIQUE(__kpts_pre_patch_))(struct klp_object *) \
		__KPTS_SECTION("callbacks.pre_patch") = _fn
#define KPATCH_POST_PATCH_CALLBACK(_fn) \
	static void (*__KPTS_UNIQUE(__kpts_post_patch_))(struct klp_object *) \
		__KPTS_SECTION("callbacks.post_patch") = _fn
#define KPATCH_PRE_UNPATCH_CALLBACK(_fn) \
	static void (*__KPTS_UNIQUE(__kpts_pre_unpatch_))(struct klp_object *) \
		__KPTS_SECTION("callbacks.pre_unpatch") = _fn
#define KPATCH_POST_UNPATCH_CALLBACK(_fn) \
	static void (*__KPTS_UNIQUE(__kpts_post_unpatch_))(struct klp_object *) \
		__KPTS_SECTION("callbacks.post_unpatch") = _fn

#define KPATCH_IGNORE_FUNCTION(_fn) \
	static void *__KPTS_UNIQUE(__kpts_ignore_function_) \
		__KPTS_SECTION("ignore.functions") = (void *)(_fn)
#define KPATCH_IGNORE_SECTION(_name) \
	static const char *__KPTS_UNIQUE(__kpts_ignore_section_) \
		__KPTS_SECTION("ignore.sections") = (_name)
#define KPATCH_FORCE_UNSAFE(_fn) \
	static void *__KPTS_UNIQUE(__kpts_force_) \
		__KPTS_SECTION("force.functions") = (void *)(_fn)

#endif /* _KPATCH_TS_MACROS_H */
