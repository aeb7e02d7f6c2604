/*
 * oracle.c: asks Debian's libwrap for its verdict, for the differential test
 * in oracle_test.go. It is compiled by that test (gcc ... -lwrap -ldl) into a
 * temporary directory; it is never part of smtp-bs.
 *
 * Input on stdin, one record per line, fields separated by one space, every
 * string field hex-encoded ("-" is the empty string):
 *
 *   C <id>                  start a case
 *   D <daemon>              daemon name (RQ_DAEMON)
 *   A <allow-file>          hosts_allow_table
 *   Y <deny-file>           hosts_deny_table
 *   L <client-ip> <port>    client endpoint (numeric, v4 or v6)
 *   S <server-ip> <port>    server endpoint (optional)
 *   U <user>                RQ_USER (always given: an empty user would make
 *                           libwrap do an RFC 931 lookup over the network)
 *   P <ip> <name>           fake reverse DNS: ip -> name
 *   H <name> <canon> <ip>   fake forward DNS: name -> ip, canonical name
 *   E <name>                an environment variable to report afterwards
 *   G                       run the case
 *
 * Output, one line per case:
 *   <id> <0|1> <allow_severity> <deny_severity> <name>=<hex value>|<name>! ...
 *
 * Name lookups never reach the network: getnameinfo and getaddrinfo are
 * interposed here (an executable's definitions win over libc's for calls made
 * from libwrap.so), numeric requests go to the real functions, and every
 * name request is answered from the case's fake table. The test never
 * generates spawn, twist, aclexec or banners; user and group only check
 * that the name exists (see dry_run below), nice renices this process,
 * umask changes its umask, linger and keepalive fail on fd -1.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <dlfcn.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <syslog.h>
#include <tcpd.h>
#include <unistd.h>

int allow_severity = LOG_INFO;
int deny_severity = LOG_WARNING;
extern int dry_run;

#define MAXREC 64

struct ptr_rec {
	int family;
	unsigned char addr[16];
	char *name;
};

struct host_rec {
	char *name;
	char *canon;
	int family;
	unsigned char addr[16];
};

static struct ptr_rec ptrs[MAXREC];
static int nptr;
static struct host_rec hosts[MAXREC];
static int nhost;

typedef int (*gai_fn)(const char *, const char *, const struct addrinfo *,
		      struct addrinfo **);
typedef int (*gni_fn)(const struct sockaddr *, socklen_t, char *, socklen_t,
		      char *, socklen_t, int);

static gai_fn real_gai(void)
{
	static gai_fn fn;
	if (!fn)
		fn = (gai_fn)dlsym(RTLD_NEXT, "getaddrinfo");
	return fn;
}

static gni_fn real_gni(void)
{
	static gni_fn fn;
	if (!fn)
		fn = (gni_fn)dlsym(RTLD_NEXT, "getnameinfo");
	return fn;
}

int getnameinfo(const struct sockaddr *sa, socklen_t salen, char *host,
		socklen_t hostlen, char *serv, socklen_t servlen, int flags)
{
	const unsigned char *a;
	int family, n, i;

	if (flags & NI_NUMERICHOST)
		return real_gni()(sa, salen, host, hostlen, serv, servlen, flags);
	family = sa->sa_family;
	if (family == AF_INET) {
		a = (const unsigned char *)&((const struct sockaddr_in *)sa)->sin_addr;
		n = 4;
	} else if (family == AF_INET6) {
		a = (const unsigned char *)&((const struct sockaddr_in6 *)sa)->sin6_addr;
		n = 16;
	} else {
		return EAI_FAMILY;
	}
	for (i = 0; i < nptr; i++) {
		if (ptrs[i].family == family && memcmp(ptrs[i].addr, a, n) == 0) {
			if (strlen(ptrs[i].name) + 1 > hostlen)
				return EAI_OVERFLOW;
			strcpy(host, ptrs[i].name);
			return 0;
		}
	}
	return EAI_NONAME;
}

int getaddrinfo(const char *node, const char *service,
		const struct addrinfo *hints, struct addrinfo **res)
{
	struct addrinfo h, *head = 0, **tail = &head;
	int family, i, ret;

	if (node == 0 || (hints && (hints->ai_flags & AI_NUMERICHOST)))
		return real_gai()(node, service, hints, res);
	/* A numeric host is resolved without DNS by the real function. */
	memset(&h, 0, sizeof(h));
	if (hints)
		h = *hints;
	h.ai_flags |= AI_NUMERICHOST;
	ret = real_gai()(node, service, &h, res);
	if (ret != EAI_NONAME)
		return ret;
	family = hints ? hints->ai_family : AF_UNSPEC;
	for (i = 0; i < nhost; i++) {
		struct addrinfo *ai;
		size_t salen;
		if (strcasecmp(hosts[i].name, node) != 0)
			continue;
		if (family != AF_UNSPEC && family != hosts[i].family)
			continue;
		salen = hosts[i].family == AF_INET ? sizeof(struct sockaddr_in)
						    : sizeof(struct sockaddr_in6);
		/* One allocation, as glibc's freeaddrinfo expects. */
		ai = calloc(1, sizeof(*ai) + sizeof(struct sockaddr_in6));
		ai->ai_family = hosts[i].family;
		ai->ai_socktype = SOCK_STREAM;
		ai->ai_protocol = IPPROTO_TCP;
		ai->ai_addrlen = salen;
		ai->ai_addr = (struct sockaddr *)(ai + 1);
		if (hosts[i].family == AF_INET) {
			struct sockaddr_in *s = (struct sockaddr_in *)ai->ai_addr;
			s->sin_family = AF_INET;
			memcpy(&s->sin_addr, hosts[i].addr, 4);
		} else {
			struct sockaddr_in6 *s = (struct sockaddr_in6 *)ai->ai_addr;
			s->sin6_family = AF_INET6;
			memcpy(&s->sin6_addr, hosts[i].addr, 16);
		}
		if (head == 0 && hints && (hints->ai_flags & AI_CANONNAME))
			ai->ai_canonname = strdup(hosts[i].canon);
		*tail = ai;
		tail = &ai->ai_next;
	}
	if (head == 0)
		return EAI_NONAME;
	*res = head;
	return 0;
}

static int hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/* unhex decodes a field in place; "-" is the empty string. */
static char *unhex(char *s)
{
	char *d = s, *r = s;
	if (strcmp(s, "-") == 0) {
		*s = 0;
		return s;
	}
	while (s[0] && s[1]) {
		*d++ = (char)(hexval(s[0]) * 16 + hexval(s[1]));
		s += 2;
	}
	*d = 0;
	return r;
}

static void puthex(const char *s)
{
	if (*s == 0) {
		putchar('-');
		return;
	}
	for (; *s; s++)
		printf("%02x", (unsigned char)*s);
}

static int parse_ip(const char *text, int *family, unsigned char *addr)
{
	if (inet_pton(AF_INET, text, addr) == 1) {
		*family = AF_INET;
		return 1;
	}
	if (inet_pton(AF_INET6, text, addr) == 1) {
		*family = AF_INET6;
		return 1;
	}
	return 0;
}

static void fill_sin(struct sockaddr_storage *ss, int family,
		     const unsigned char *addr, int port)
{
	memset(ss, 0, sizeof(*ss));
	if (family == AF_INET) {
		struct sockaddr_in *s = (struct sockaddr_in *)ss;
		s->sin_family = AF_INET;
		s->sin_port = htons(port);
		memcpy(&s->sin_addr, addr, 4);
	} else {
		struct sockaddr_in6 *s = (struct sockaddr_in6 *)ss;
		s->sin6_family = AF_INET6;
		s->sin6_port = htons(port);
		memcpy(&s->sin6_addr, addr, 16);
	}
}

static char *dup_field(char **save)
{
	char *f = strtok_r(0, " \n", save);
	return strdup(unhex(f ? f : "-"));
}

int main(void)
{
	static char line[65536];
	char id[64] = "", daemon[4096] = "", user[4096] = "";
	static char allow[4096], deny[4096];
	char *envs[MAXREC];
	int nenv = 0, have_server = 0, have_client = 0, i;
	struct sockaddr_storage client, server;

	uid_t euid = geteuid();
	gid_t egid = getegid();

	/* Debian's build runs setuid/setgid for the user and group options
	 * only when dry_run is set, so it stays 0 here. */
	dry_run = 0;
	setvbuf(stdout, 0, _IOFBF, 1 << 16);
	while (fgets(line, sizeof(line), stdin)) {
		char *save, *key = strtok_r(line, " \n", &save);
		if (key == 0)
			continue;
		switch (key[0]) {
		case 'C':
			for (i = 0; i < nptr; i++)
				free(ptrs[i].name);
			for (i = 0; i < nhost; i++) {
				free(hosts[i].name);
				free(hosts[i].canon);
			}
			for (i = 0; i < nenv; i++)
				free(envs[i]);
			nptr = nhost = nenv = have_server = have_client = 0;
			snprintf(id, sizeof(id), "%s", strtok_r(0, " \n", &save));
			break;
		case 'D':
			snprintf(daemon, sizeof(daemon), "%s", unhex(strtok_r(0, " \n", &save)));
			break;
		case 'A':
			snprintf(allow, sizeof(allow), "%s", unhex(strtok_r(0, " \n", &save)));
			break;
		case 'Y':
			snprintf(deny, sizeof(deny), "%s", unhex(strtok_r(0, " \n", &save)));
			break;
		case 'U':
			snprintf(user, sizeof(user), "%s", unhex(strtok_r(0, " \n", &save)));
			break;
		case 'L':
		case 'S': {
			int family;
			unsigned char addr[16];
			char *ip = unhex(strtok_r(0, " \n", &save));
			int port = atoi(strtok_r(0, " \n", &save));
			if (!parse_ip(ip, &family, addr)) {
				fprintf(stderr, "oracle: bad address %s\n", ip);
				return 2;
			}
			if (key[0] == 'L') {
				fill_sin(&client, family, addr, port);
				have_client = 1;
			} else {
				fill_sin(&server, family, addr, port);
				have_server = 1;
			}
			break;
		}
		case 'P': {
			char *ip = unhex(strtok_r(0, " \n", &save));
			if (nptr < MAXREC && parse_ip(ip, &ptrs[nptr].family, ptrs[nptr].addr)) {
				ptrs[nptr].name = dup_field(&save);
				nptr++;
			}
			break;
		}
		case 'H': {
			char *name, *canon, *ip;
			if (nhost >= MAXREC)
				break;
			name = dup_field(&save);
			canon = dup_field(&save);
			ip = unhex(strtok_r(0, " \n", &save));
			if (!parse_ip(ip, &hosts[nhost].family, hosts[nhost].addr)) {
				free(name);
				free(canon);
				break;
			}
			hosts[nhost].name = name;
			hosts[nhost].canon = canon;
			nhost++;
			break;
		}
		case 'E':
			if (nenv < MAXREC)
				envs[nenv++] = dup_field(&save);
			break;
		case 'G': {
			struct request_info req;
			int verdict;
			for (i = 0; i < nenv; i++)
				unsetenv(envs[i]);
			allow_severity = LOG_INFO;
			deny_severity = LOG_WARNING;
			hosts_allow_table = allow;
			hosts_deny_table = deny;
			request_init(&req, RQ_DAEMON, daemon, RQ_USER, user, 0);
			if (have_client)
				request_set(&req, RQ_CLIENT_SIN, &client, 0);
			if (have_server)
				request_set(&req, RQ_SERVER_SIN, &server, 0);
			sock_methods(&req);
			verdict = hosts_access(&req);
			if (geteuid() != euid || getegid() != egid) {
				fprintf(stderr, "oracle: case %s changed our ids\n", id);
				return 3;
			}
			printf("%s %d %d %d", id, verdict, allow_severity, deny_severity);
			for (i = 0; i < nenv; i++) {
				char *v = getenv(envs[i]);
				printf(" ");
				puthex(envs[i]);
				if (v) {
					printf("=");
					puthex(v);
				} else {
					printf("!");
				}
			}
			printf("\n");
			break;
		}
		}
	}
	return 0;
}
