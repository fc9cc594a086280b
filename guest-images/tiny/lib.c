/* SPDX-License-Identifier: MIT */
/* Reporting through the test port, string helpers, boot_params access. */
#include "tiny.h"

const uint8_t *boot_params;

void *memset(void *s, int c, size_t n)
{
	void *d = s;

	__asm__ volatile("rep stosb" : "+D"(d), "+c"(n) : "a"(c) : "memory");
	return s;
}

void *memcpy(void *d, const void *s, size_t n)
{
	void *dd = d;

	__asm__ volatile("rep movsb" : "+D"(dd), "+S"(s), "+c"(n) : : "memory");
	return d;
}

void *memmove(void *d, const void *s, size_t n)
{
	unsigned char *dp = d;
	const unsigned char *sp = s;

	if (dp <= sp || dp >= sp + n)
		return memcpy(d, s, n);
	while (n--)
		dp[n] = sp[n];
	return d;
}

int memcmp(const void *a, const void *b, size_t n)
{
	const unsigned char *x = a, *y = b;

	for (size_t i = 0; i < n; i++)
		if (x[i] != y[i])
			return x[i] < y[i] ? -1 : 1;
	return 0;
}

size_t strlen(const char *s)
{
	size_t n = 0;

	while (s[n])
		n++;
	return n;
}

int strncmp(const char *a, const char *b, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (a[i] != b[i])
			return (unsigned char)a[i] < (unsigned char)b[i] ? -1 : 1;
		if (!a[i])
			return 0;
	}
	return 0;
}

struct outbuf {
	char *buf;
	size_t size, pos;
};

static void ob_put(struct outbuf *ob, char c)
{
	if (ob->pos + 1 < ob->size)
		ob->buf[ob->pos] = c;
	ob->pos++;
}

static void ob_num(struct outbuf *ob, uint64_t v, unsigned int base, bool neg, int width, char pad)
{
	char tmp[24];
	int n = 0;

	do {
		unsigned int d = (unsigned int)(v % base);

		tmp[n++] = (char)(d < 10 ? '0' + d : 'a' + d - 10);
		v /= base;
	} while (v);
	if (neg)
		tmp[n++] = '-';
	while (width-- > n)
		ob_put(ob, pad);
	while (n)
		ob_put(ob, tmp[--n]);
}

/* %d %i %u %x %c %s %p, with l/ll/z length, width and 0 padding */
int vsnprintf_tiny(char *buf, size_t size, const char *fmt, va_list ap)
{
	struct outbuf ob = { buf, size, 0 };

	for (; *fmt; fmt++) {
		int width = 0, lng = 0;
		char pad = ' ';

		if (*fmt != '%') {
			ob_put(&ob, *fmt);
			continue;
		}
		fmt++;
		if (*fmt == '0') {
			pad = '0';
			fmt++;
		}
		while (*fmt >= '0' && *fmt <= '9')
			width = width * 10 + (*fmt++ - '0');
		while (*fmt == 'l' || *fmt == 'z') {
			lng++;
			fmt++;
		}
		switch (*fmt) {
		case 'd':
		case 'i': {
			int64_t v = lng ? va_arg(ap, int64_t) : va_arg(ap, int);

			ob_num(&ob, v < 0 ? (uint64_t)-v : (uint64_t)v, 10, v < 0, width, pad);
			break;
		}
		case 'u':
		case 'x': {
			uint64_t v = lng ? va_arg(ap, uint64_t) : va_arg(ap, unsigned int);

			ob_num(&ob, v, *fmt == 'x' ? 16 : 10, false, width, pad);
			break;
		}
		case 'p':
			ob_put(&ob, '0');
			ob_put(&ob, 'x');
			ob_num(&ob, (uint64_t)(uintptr_t)va_arg(ap, void *), 16, false, width, pad);
			break;
		case 'c':
			ob_put(&ob, (char)va_arg(ap, int));
			break;
		case 's': {
			const char *s = va_arg(ap, const char *);
			int len;

			if (!s)
				s = "(null)";
			len = (int)strlen(s);
			while (width-- > len)
				ob_put(&ob, ' ');
			while (*s)
				ob_put(&ob, *s++);
			break;
		}
		case '%':
			ob_put(&ob, '%');
			break;
		case '\0':
			fmt--;
			break;
		default:
			ob_put(&ob, '%');
			ob_put(&ob, *fmt);
			break;
		}
	}
	if (size)
		buf[ob.pos < size ? ob.pos : size - 1] = '\0';
	return (int)ob.pos;
}

int snprintf_tiny(char *buf, size_t size, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf_tiny(buf, size, fmt, ap);
	va_end(ap);
	return n;
}

void report(const char *fmt, ...)
{
	char line[256];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf_tiny(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (n > (int)sizeof(line) - 1)
		n = (int)sizeof(line) - 1;
	for (int i = 0; i < n; i++)
		outb(TESTDEV_PORT_OUT, (uint8_t)line[i]);
	if (n == 0 || line[n - 1] != '\n')
		outb(TESTDEV_PORT_OUT, '\n');
}

void report_hex(const char *key, const void *buf, size_t len)
{
	char line[200];
	const uint8_t *p = buf;
	size_t pos = 0;

	if (len > 64)
		len = 64;
	for (size_t i = 0; i < len; i++)
		pos += (size_t)snprintf_tiny(line + pos, sizeof(line) - pos, "%02x", p[i]);
	report("%s=%s", key, line);
}

void guest_exit(int code)
{
	outl(TESTDEV_PORT_EXIT, (uint32_t)code);
	/* the VMM should be gone by now; never return into start.S */
	for (;;)
		__asm__ volatile("cli; hlt");
}

uint32_t crc32(const void *buf, size_t len)
{
	const uint8_t *p = buf;
	uint32_t crc = 0xffffffffu;

	while (len--) {
		crc ^= *p++;
		for (int k = 0; k < 8; k++)
			crc = (crc >> 1) ^ (0xedb88320u & -(crc & 1));
	}
	return ~crc;
}

const char *bp_cmdline(void)
{
	uint64_t p;

	if (!boot_params)
		return "";
	p = *(const uint32_t *)(boot_params + BP_CMD_LINE_PTR);
	p |= (uint64_t)*(const uint32_t *)(boot_params + BP_EXT_CMD_LINE_PTR) << 32;
	if (!p || p >= (4ull << 30))
		return "";
	return (const char *)(uintptr_t)p;
}

static const char *cmdline_find(const char *key, size_t klen, char term)
{
	const char *s = bp_cmdline();

	while (*s) {
		while (*s == ' ')
			s++;
		if (!strncmp(s, key, klen) && (s[klen] == term || (term == ' ' && s[klen] == '\0')))
			return s + klen;
		while (*s && *s != ' ')
			s++;
	}
	return NULL;
}

int cmdline_get(const char *key, char *buf, size_t size)
{
	const char *v = cmdline_find(key, strlen(key), '=');
	size_t n = 0;

	if (!v)
		return -1;
	v++;
	while (v[n] && v[n] != ' ' && n + 1 < size) {
		buf[n] = v[n];
		n++;
	}
	buf[n] = '\0';
	return (int)n;
}

bool cmdline_has(const char *word)
{
	return cmdline_find(word, strlen(word), ' ') != NULL;
}

unsigned long strtoul_tiny(const char *s, const char **end, int base)
{
	unsigned long v = 0;

	if (base == 0) {
		base = 10;
		if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
			base = 16;
			s += 2;
		}
	}
	for (;; s++) {
		int d;

		if (*s >= '0' && *s <= '9')
			d = *s - '0';
		else if (*s >= 'a' && *s <= 'f')
			d = *s - 'a' + 10;
		else if (*s >= 'A' && *s <= 'F')
			d = *s - 'A' + 10;
		else
			break;
		if (d >= base)
			break;
		v = v * (unsigned long)base + (unsigned long)d;
	}
	if (end)
		*end = s;
	return v;
}
