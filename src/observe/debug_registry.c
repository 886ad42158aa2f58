/*
 * debug_registry.c - the sections and profiles the debug server shows,
 * filled in by the layers that own them (debug_registry.h).
 *
 * Locks: registry_mu guards both lists; held while the index page renders
 * the sections, by register/unregister, and across fork (debug_server.c's
 * fork handlers take the server's lock first, then this one).
 * Profiles are never unregistered: entries point at static descriptors.
 */
#include "debug_registry.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

typedef struct section {
    char *name;
    goro__debug_render_fn render;
    void *ctx;
    struct section *next;
} section;

#define MAX_PROFILES 32

static pthread_mutex_t registry_mu = PTHREAD_MUTEX_INITIALIZER;
static section *sections;
static const goro__debug_profile *profiles[MAX_PROFILES];
static int nprofiles;

void goro__debug_registry_lock(void) { pthread_mutex_lock(&registry_mu); }

void goro__debug_registry_unlock(void) { pthread_mutex_unlock(&registry_mu); }

/* -------------------------------------------------------------- sections */

int goro__debug_register_section(const char *name, goro__debug_render_fn render, void *ctx) {
    if (!name || !render)
        return EINVAL;
    section *s = calloc(1, sizeof *s);
    char *n = strdup(name);
    if (!s || !n) {
        free(s);
        free(n);
        return ENOMEM;
    }
    s->name = n;
    s->render = render;
    s->ctx = ctx;
    pthread_mutex_lock(&registry_mu);
    section **pp = &sections;
    while (*pp)
        pp = &(*pp)->next;
    *pp = s;
    pthread_mutex_unlock(&registry_mu);
    return 0;
}

void goro__debug_unregister_section(goro__debug_render_fn render, void *ctx) {
    section *dead = NULL;
    pthread_mutex_lock(&registry_mu);
    for (section **pp = &sections; *pp; pp = &(*pp)->next) {
        if ((*pp)->render == render && (*pp)->ctx == ctx) {
            dead = *pp;
            *pp = dead->next;
            break;
        }
    }
    pthread_mutex_unlock(&registry_mu);
    if (dead) {
        free(dead->name);
        free(dead);
    }
}

void goro__debug_sections_render(void (*fn)(const char *name, const char *text, size_t len,
                                            void *arg),
                                 void *arg) {
    pthread_mutex_lock(&registry_mu);
    for (section *s = sections; s; s = s->next) {
        char *text = NULL;
        size_t tlen = 0;
        FILE *t = open_memstream(&text, &tlen);
        if (!t)
            continue;
        s->render(t, s->ctx);
        if (fclose(t) == 0)
            fn(s->name, text, tlen, arg);
        free(text);
    }
    pthread_mutex_unlock(&registry_mu);
}

/* -------------------------------------------------------------- profiles */

int goro__debug_register_profile(const goro__debug_profile *p) {
    if (!p || !p->name || !p->name[0])
        return EINVAL;
    int rc = 0;
    pthread_mutex_lock(&registry_mu);
    int i = 0;
    while (i < nprofiles && strcmp(profiles[i]->name, p->name) != 0)
        i++;
    if (i < nprofiles)
        profiles[i] = p;
    else if (nprofiles < MAX_PROFILES)
        profiles[nprofiles++] = p;
    else
        rc = ENOMEM;
    pthread_mutex_unlock(&registry_mu);
    return rc;
}

const goro__debug_profile *goro__debug_profile_find(const char *name) {
    const goro__debug_profile *p = NULL;
    pthread_mutex_lock(&registry_mu);
    for (int i = 0; i < nprofiles && !p; i++)
        if (strcmp(profiles[i]->name, name) == 0)
            p = profiles[i];
    pthread_mutex_unlock(&registry_mu);
    return p;
}

static int cmp_profile(const void *a, const void *b) {
    return strcmp((*(const goro__debug_profile *const *)a)->name,
                  (*(const goro__debug_profile *const *)b)->name);
}

int goro__debug_profiles(const goro__debug_profile **out, int max) {
    pthread_mutex_lock(&registry_mu);
    int n = nprofiles < max ? nprofiles : max;
    memcpy(out, profiles, (size_t)n * sizeof *out);
    pthread_mutex_unlock(&registry_mu);
    qsort(out, (size_t)n, sizeof *out, cmp_profile);
    return n;
}
