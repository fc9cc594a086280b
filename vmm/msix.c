// SPDX-License-Identifier: MIT
#include "vmm/msix.h"
#include <endian.h>
#include "migration/section.h"
#include "vmm/irq.h"
#include "vmm/log.h"
#include "vmm/pci.h"
#include "vmm/sys.h"

#include <errno.h>
#include <linux/pci_regs.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static struct log_ratelimit msix_rl = LOG_RATELIMIT_INIT;

uint32_t msix__table_size(uint16_t nr) { return (uint32_t)nr * MSIX_ENTRY_SIZE; }
uint32_t msix__pba_size(uint16_t nr) { return ALIGN_UP(((uint32_t)nr + 63) / 64 * 8, 8u); }

static uint16_t msix_ctrl(const struct msix *m)
{
	return pci__cfg_rd16(m->dev, m->cap_off + PCI_MSIX_FLAGS);
}

bool msix__enabled(const struct msix *m)
{
	return m->nr && (msix_ctrl(m) & PCI_MSIX_FLAGS_ENABLE);
}

static bool msix_func_masked(const struct msix *m)
{
	return msix_ctrl(m) & PCI_MSIX_FLAGS_MASKALL;
}

static bool msix_vec_masked(const struct msix *m, const struct msix_vector *v)
{
	return !msix__enabled(m) || msix_func_masked(m) || (v->ctrl & PCI_MSIX_ENTRY_CTRL_MASKBIT);
}

static void msix_fire(struct msix *m, struct msix_vector *v)
{
	v->count++;
	if (v->routed && v->efd >= 0) {
		sys__eventfd_signal(v->efd);
		return;
	}
	if (m->irq && m->irq->vm_fd >= 0) {
		/* no irqfd (route could not be set up): inject from userspace */
		m->userspace_injections++;
		irq__signal_msi(m->irq, (uint64_t)v->addr_hi << 32 | v->addr_lo, v->data);
	}
}

/* give vector i a GSI, point its MSI route at its table entry, attach its irqfd */
static int msix_route(struct msix *m, uint16_t i)
{
	struct msix_vector *v = &m->vec[i];
	uint64_t addr = (uint64_t)v->addr_hi << 32 | v->addr_lo;
	int ret;

	if (v->gsi < 0) {
		ret = irq__alloc_gsi(m->irq);
		if (ret < 0) {
			log_err_rl(&msix_rl, m->dev->name, "no GSI for MSI-X vector %u", i);
			return ret;
		}
		v->gsi = ret;
	}
	ret = irq__set_msi_route(m->irq, (uint32_t)v->gsi, addr, v->data);
	if (!ret && !v->routed) {
		ret = irq__irqfd(m->irq, v->efd, (uint32_t)v->gsi, -1, true);
		if (!ret)
			v->routed = true;
	}
	if (ret)
		log_err_rl(&msix_rl, m->dev->name, "MSI-X vector %u route: %s", i, strerror(-ret));
	return ret;
}

/*
 * Passthrough: the producer signals v->efd itself. A live vector has its route
 * and irqfd; a masked one has its irqfd detached so events wait in the eventfd
 * (KVM delivers them when the irqfd is attached again on unmask).
 */
static void msix_update_vector_pt(struct msix *m, uint16_t i)
{
	struct msix_vector *v = &m->vec[i];
	bool was_live = v->routed;
	int ret;

	if (msix_vec_masked(m, v)) {
		if (v->routed) {
			ret = irq__irqfd(m->irq, v->efd, (uint32_t)v->gsi, -1, false);
			if (ret)
				log_err_rl(&msix_rl, m->dev->name, "MSI-X vector %u: irqfd detach: %s",
					   i, strerror(-ret));
			v->routed = false;
		}
	} else if (m->irq && v->efd >= 0) {
		msix_route(m, i);
	}
	if (was_live != v->routed && m->pt_ops->vector)
		m->pt_ops->vector(m, i, v->routed, m->pt_opaque);
}

/* make vector i's KVM route match its table entry; called with m->lock held */
static void msix_update_vector(struct msix *m, uint16_t i)
{
	struct msix_vector *v = &m->vec[i];

	if (m->pt_ops) {
		msix_update_vector_pt(m, i);
		return;
	}
	if (msix_vec_masked(m, v)) {
		/* keep the route: a masked vector's events become pending bits (msix__notify) */
		return;
	}
	if (m->irq && m->irq->vm_fd >= 0) {
		if (v->efd < 0) {
			v->efd = sys__eventfd(0);
			if (v->efd < 0) {
				log_err_rl(&msix_rl, m->dev->name, "eventfd for vector %u: %s", i,
					   strerror(-v->efd));
				return;
			}
		}
		msix_route(m, i);
	}
	if (v->pending) {
		v->pending = false;
		msix_fire(m, v);
	}
}

static void msix_update_all(struct msix *m)
{
	uint16_t i;

	for (i = 0; i < m->nr; i++)
		msix_update_vector(m, i);
}

/* nr vectors as after reset: masked, no GSI, no eventfd; NULL without memory */
static struct msix_vector *msix_alloc_vectors(uint16_t nr)
{
	struct msix_vector *vec = calloc(nr, sizeof(*vec));
	uint16_t i;

	if (!vec)
		return NULL;
	for (i = 0; i < nr; i++) {
		vec[i].ctrl = PCI_MSIX_ENTRY_CTRL_MASKBIT;
		vec[i].gsi = -1;
		vec[i].efd = -1;
	}
	return vec;
}

int msix__init(struct msix *m, struct pci_dev *d, struct irq *irq, uint16_t nr, int bar,
	       uint32_t table_off, uint32_t pba_off)
{
	uint8_t body[10];
	int off;

	memset(m, 0, sizeof(*m));
	if (!nr || nr > MSIX_MAX_VECTORS || bar < 0 || bar >= PCI_NUM_BARS ||
	    (table_off & 7) || (pba_off & 7))
		return -EINVAL;
	m->vec = msix_alloc_vectors(nr);
	if (!m->vec)
		return -ENOMEM;
	memset(body, 0, sizeof(body));
	body[0] = (uint8_t)((nr - 1) & 0xff);
	body[1] = (uint8_t)((nr - 1) >> 8);
	body[2] = (uint8_t)(table_off | (uint32_t)bar);
	body[3] = (uint8_t)(table_off >> 8);
	body[4] = (uint8_t)(table_off >> 16);
	body[5] = (uint8_t)(table_off >> 24);
	body[6] = (uint8_t)(pba_off | (uint32_t)bar);
	body[7] = (uint8_t)(pba_off >> 8);
	body[8] = (uint8_t)(pba_off >> 16);
	body[9] = (uint8_t)(pba_off >> 24);
	off = pci__dev_add_cap(d, PCI_CAP_ID_MSIX, body, sizeof(body));
	if (off < 0) {
		free(m->vec);
		m->vec = NULL;
		return off;
	}
	/* only enable and function-mask are writable */
	d->wmask[off + PCI_MSIX_FLAGS + 1] = (PCI_MSIX_FLAGS_ENABLE | PCI_MSIX_FLAGS_MASKALL) >> 8;
	pthread_mutex_init(&m->lock, NULL);
	m->dev = d;
	m->irq = irq;
	m->nr = nr;
	m->cap_off = (uint8_t)off;
	m->table_bar = bar;
	m->pba_bar = bar;
	m->table_off = table_off;
	m->pba_off = pba_off;
	return 0;
}

int msix__init_existing(struct msix *m, struct pci_dev *d, struct irq *irq, uint8_t cap_off)
{
	uint32_t table, pba;
	uint16_t nr;

	memset(m, 0, sizeof(*m));
	if (cap_off < 0x40 || cap_off > PCI_CFG_SPACE_SIZE - PCI_CAP_MSIX_SIZEOF ||
	    pci__cfg_rd8(d, cap_off) != PCI_CAP_ID_MSIX)
		return -EINVAL;
	nr = (uint16_t)((pci__cfg_rd16(d, cap_off + PCI_MSIX_FLAGS) & PCI_MSIX_FLAGS_QSIZE) + 1);
	table = pci__cfg_rd32(d, cap_off + PCI_MSIX_TABLE);
	pba = pci__cfg_rd32(d, cap_off + PCI_MSIX_PBA);
	if ((table & PCI_MSIX_TABLE_BIR) >= PCI_NUM_BARS || (pba & PCI_MSIX_PBA_BIR) >= PCI_NUM_BARS)
		return -EINVAL;
	m->vec = msix_alloc_vectors(nr);
	if (!m->vec)
		return -ENOMEM;
	/* the guest starts with MSI-X off whatever the device had */
	pci__cfg_wr16(d, cap_off + PCI_MSIX_FLAGS,
		      pci__cfg_rd16(d, cap_off + PCI_MSIX_FLAGS) & PCI_MSIX_FLAGS_QSIZE);
	pci__dev_set_wmask(d, cap_off, PCI_CAP_MSIX_SIZEOF, 0);
	d->wmask[cap_off + PCI_MSIX_FLAGS + 1] = (PCI_MSIX_FLAGS_ENABLE | PCI_MSIX_FLAGS_MASKALL) >> 8;
	pthread_mutex_init(&m->lock, NULL);
	m->dev = d;
	m->irq = irq;
	m->nr = nr;
	m->cap_off = cap_off;
	m->table_bar = (int)(table & PCI_MSIX_TABLE_BIR);
	m->table_off = table & PCI_MSIX_TABLE_OFFSET;
	m->pba_bar = (int)(pba & PCI_MSIX_PBA_BIR);
	m->pba_off = pba & PCI_MSIX_PBA_OFFSET;
	return 0;
}

int msix__set_passthrough(struct msix *m, const struct msix_passthrough_ops *ops, void *opaque)
{
	uint16_t i;
	int fd;

	if (!m->vec || !ops)
		return -EINVAL;
	pthread_mutex_lock(&m->lock);
	for (i = 0; i < m->nr; i++) {
		if (m->vec[i].efd >= 0)
			continue;
		fd = sys__eventfd(0);
		if (fd < 0) {
			pthread_mutex_unlock(&m->lock);
			return fd; /* msix__destroy closes the ones made so far */
		}
		m->vec[i].efd = fd;
	}
	m->pt_ops = ops;
	m->pt_opaque = opaque;
	pthread_mutex_unlock(&m->lock);
	return 0;
}

void msix__destroy(struct msix *m)
{
	uint16_t i;

	if (!m->vec)
		return;
	for (i = 0; i < m->nr; i++) {
		struct msix_vector *v = &m->vec[i];

		if (v->routed && irq__irqfd(m->irq, v->efd, (uint32_t)v->gsi, -1, false))
			log_warn(m->dev->name, "cannot detach irqfd of vector %u", i);
		if (v->gsi >= 0 && m->irq)
			irq__clear_route(m->irq, (uint32_t)v->gsi);
		if (v->efd >= 0)
			close(v->efd);
	}
	free(m->vec);
	m->vec = NULL;
	pthread_mutex_destroy(&m->lock);
}

void msix__table_access(struct msix *m, uint64_t off, uint8_t *data, uint32_t len, bool is_write)
{
	uint32_t *field;
	uint16_t i;

	if (!is_write)
		memset(data, 0, len);
	/* the spec allows aligned dword and qword accesses only */
	if ((len != 4 && len != 8) || (off & (len - 1)) || off + len > msix__table_size(m->nr)) {
		log_err_rl(&msix_rl, m->dev->name, "bad MSI-X table access off %#llx len %u",
			   (unsigned long long)off, len);
		return;
	}
	pthread_mutex_lock(&m->lock);
	for (; len; len -= 4, off += 4, data += 4) {
		i = (uint16_t)(off / MSIX_ENTRY_SIZE);
		field = &m->vec[i].addr_lo + (off % MSIX_ENTRY_SIZE) / 4;
		if (!is_write) {
			memcpy(data, field, 4);
			continue;
		}
		memcpy(field, data, 4);
		if (field == &m->vec[i].ctrl)
			m->vec[i].ctrl &= PCI_MSIX_ENTRY_CTRL_MASKBIT;
		msix_update_vector(m, i);
	}
	pthread_mutex_unlock(&m->lock);
}

/* passthrough: a masked vector is pending when its eventfd holds events */
static bool msix_vec_pending(const struct msix *m, const struct msix_vector *v)
{
	struct pollfd p = { .fd = v->efd, .events = POLLIN };

	if (!m->pt_ops)
		return v->pending;
	if (v->routed || v->efd < 0)
		return false;
	return poll(&p, 1, 0) == 1 && (p.revents & POLLIN);
}

void msix__pba_access(struct msix *m, uint64_t off, uint8_t *data, uint32_t len, bool is_write)
{
	uint32_t i;

	if (is_write)
		return; /* read-only */
	memset(data, 0, len);
	if (off >= msix__pba_size(m->nr) || len > msix__pba_size(m->nr) - off)
		return;
	pthread_mutex_lock(&m->lock);
	for (i = 0; i < len * 8; i++) {
		uint64_t bit = off * 8 + i;

		if (bit < m->nr && msix_vec_pending(m, &m->vec[bit]))
			data[i / 8] |= (uint8_t)(1u << (i % 8));
	}
	pthread_mutex_unlock(&m->lock);
}

void msix__cfg_write(struct msix *m, uint32_t off, uint32_t len)
{
	if (!m->nr || !ranges_overlap(off, len, m->cap_off + PCI_MSIX_FLAGS, 2))
		return;
	pthread_mutex_lock(&m->lock);
	msix_update_all(m);
	if (m->pt_ops && m->pt_ops->enable && msix__enabled(m) != m->pt_enabled) {
		m->pt_enabled = msix__enabled(m);
		m->pt_error = m->pt_ops->enable(m, m->pt_enabled, m->pt_opaque);
	}
	pthread_mutex_unlock(&m->lock);
}

int msix__vector_fd(struct msix *m, uint16_t v)
{
	int fd;

	if (v >= m->nr)
		return -1;
	pthread_mutex_lock(&m->lock);
	fd = m->vec[v].routed ? m->vec[v].efd : -1;
	pthread_mutex_unlock(&m->lock);
	return fd;
}

int msix__vector_eventfd(struct msix *m, uint16_t v)
{
	int fd;

	if (v >= m->nr)
		return -1;
	pthread_mutex_lock(&m->lock);
	fd = m->pt_ops ? m->vec[v].efd : -1;
	pthread_mutex_unlock(&m->lock);
	return fd;
}

int msix__notify(struct msix *m, uint16_t v)
{
	struct msix_vector *vec;

	if (v >= m->nr)
		return -EINVAL;
	pthread_mutex_lock(&m->lock);
	vec = &m->vec[v];
	if (m->pt_ops && vec->efd >= 0) {
		/* the irqfd is attached only while the vector is live */
		vec->count++;
		sys__eventfd_signal(vec->efd);
	} else if (msix_vec_masked(m, vec))
		vec->pending = true;
	else
		msix_fire(m, vec);
	pthread_mutex_unlock(&m->lock);
	return 0;
}

/* --- state: the table and the pending bits (docs/migration.md) ---------------- */

int msix__save(struct msix *m, void *fdt)
{
	uint32_t *t;
	uint8_t *pba;
	uint16_t i;
	int ret;

	if (!m->nr)
		return 0;
	t = calloc((size_t)m->nr * 4, sizeof(*t));
	pba = calloc(((size_t)m->nr + 7) / 8, 1);
	if (!t || !pba) {
		free(t);
		free(pba);
		return -ENOMEM;
	}
	pthread_mutex_lock(&m->lock);
	for (i = 0; i < m->nr; i++) {
		const struct msix_vector *v = &m->vec[i];

		t[4 * i] = htobe32(v->addr_lo);
		t[4 * i + 1] = htobe32(v->addr_hi);
		t[4 * i + 2] = htobe32(v->data);
		t[4 * i + 3] = htobe32(v->ctrl);
		if (v->pending)
			pba[i / 8] |= (uint8_t)(1u << (i % 8));
	}
	pthread_mutex_unlock(&m->lock);
	ret = mig__put_bytes(fdt, "msix_table", t, (size_t)m->nr * 16);
	if (!ret)
		ret = mig__put_bytes(fdt, "msix_pba", pba, ((size_t)m->nr + 7) / 8);
	free(t);
	free(pba);
	return ret;
}

int msix__load(struct msix *m, const void *fdt, int node)
{
	const void *tp, *pp;
	const uint8_t *pba;
	size_t tl, pl;
	uint16_t i;
	int ret;

	if (!m->nr)
		return 0;
	ret = mig__get_blob(fdt, node, "msix_table", &tp, &tl);
	if (!ret)
		ret = mig__get_blob(fdt, node, "msix_pba", &pp, &pl);
	if (ret)
		return ret;
	if (tl != (size_t)m->nr * 16 || pl != ((size_t)m->nr + 7) / 8) {
		log_err(m->dev->name, "state: an MSI-X table of %zu bytes and a PBA of %zu, this "
			"device has %u vectors", tl, pl, m->nr);
		return -EINVAL;
	}
	pba = pp;
	pthread_mutex_lock(&m->lock);
	for (i = 0; i < m->nr; i++) {
		struct msix_vector *v = &m->vec[i];
		uint32_t e[4];

		memcpy(e, (const uint8_t *)tp + 16 * i, 16);
		v->addr_lo = be32toh(e[0]);
		v->addr_hi = be32toh(e[1]);
		v->data = be32toh(e[2]);
		v->ctrl = be32toh(e[3]) & PCI_MSIX_ENTRY_CTRL_MASKBIT;
		v->pending = (pba[i / 8] >> (i % 8)) & 1;
	}
	/* the routes as the table and the (already loaded) capability say */
	msix_update_all(m);
	pthread_mutex_unlock(&m->lock);
	return 0;
}
