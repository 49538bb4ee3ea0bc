/*
 * The floor for bench/snapshot.ts's restore time: the same KVM steps our restore makes, in
 * plain C, with nothing else. Replays a recording of our restore's ioctls (DENOVM_KVM_TRACE,
 * see kvm/kvm.ts: u32 role, u32 request, u32 kind, u32 length, u64 integer, bytes) against a
 * fresh /dev/kvm: creates the VM, maps the snapshot's memory file copy-on-write in place of
 * our mapping (the memory slots' userspace addresses are patched), creates the irqchip, PIT
 * and vCPUs, and sets every state the recording set (irqchip, PIT, clock, CPUID, registers,
 * XSAVE, LAPIC, MSRs, events, ...). Reads (GET ioctls), device plumbing (irqfd, ioeventfd,
 * coalesced zones) and KVM_RUN are left out. Then every vCPU enters KVM_RUN once with
 * immediate_exit set (it returns at once). Prints "c_restore_ms <ms>": from opening
 * /dev/kvm to vCPU 0's first KVM_RUN returning; reading the recording is not counted. Then
 * "c_restore_ioctls <replayed> of <recorded>".
 *
 * Usage: kvm_restore <trace> <memory file>
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

struct rec {
	uint32_t role, req, kind, len;
	uint64_t num;
	uint8_t *data;
};

static void die(const char *what) {
	perror(what);
	exit(1);
}

static double now_ms(void) {
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

/* Requests not replayed: reads, runs, and device plumbing that needs our fds. */
static int skipped(uint32_t req) {
	uint32_t dir = req >> 30;
	if (dir == 2 || dir == 3) return 1; /* _IOR, _IOWR: the kernel fills the buffer */
	switch (req) {
	case KVM_RUN:
	case KVM_CHECK_EXTENSION:
	case KVM_GET_VCPU_MMAP_SIZE:
	case KVM_GET_API_VERSION:
	case KVM_GET_TSC_KHZ:
	case KVM_KVMCLOCK_CTRL:
	case KVM_IRQFD:
	case KVM_IOEVENTFD:
	case KVM_REGISTER_COALESCED_MMIO:
	case KVM_UNREGISTER_COALESCED_MMIO:
		return 1;
	}
	return 0;
}

int main(int argc, char **argv) {
	if (argc != 3) {
		fprintf(stderr, "usage: %s trace memory-file\n", argv[0]);
		return 2;
	}
	FILE *f = fopen(argv[1], "rb");
	if (!f) die(argv[1]);
	struct rec *recs = NULL;
	size_t n = 0, cap = 0;
	for (;;) {
		struct rec r;
		uint32_t h[4];
		if (fread(h, 4, 4, f) != 4) break;
		if (fread(&r.num, 8, 1, f) != 1) break;
		r.role = h[0], r.req = h[1], r.kind = h[2], r.len = h[3];
		r.data = malloc(r.len ? r.len : 1);
		if (r.len && fread(r.data, 1, r.len, f) != r.len) die("short trace");
		if (n == cap) recs = realloc(recs, (cap = cap ? 2 * cap : 256) * sizeof *recs);
		recs[n++] = r;
	}
	fclose(f);

	double t0 = now_ms();
	int kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (kvm < 0) die("/dev/kvm");
	int mmap_size = ioctl(kvm, KVM_GET_VCPU_MMAP_SIZE, 0);
	int memfd = open(argv[2], O_RDONLY | O_CLOEXEC);
	if (memfd < 0) die(argv[2]);
	struct stat st;
	if (fstat(memfd, &st) < 0) die("fstat");
	uint8_t *mem = mmap(NULL, st.st_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_NORESERVE, memfd, 0);
	if (mem == MAP_FAILED) die("mmap memory");
	uint64_t mem_used = 0;
	int vm = -1, vcpus[64];
	struct kvm_run *runs[64];
	int nvcpu = 0, replayed = 0;
	for (size_t i = 0; i < n; i++) {
		struct rec *r = &recs[i];
		if (skipped(r->req)) continue;
		replayed++;
		if (r->role == 0) {
			if (r->req == KVM_CREATE_VM) {
				vm = ioctl(kvm, KVM_CREATE_VM, (unsigned long)r->num);
				if (vm < 0) die("KVM_CREATE_VM");
			}
			continue;
		}
		if (r->role == 1) {
			if (vm < 0) continue;
			if (r->req == KVM_CREATE_VCPU) {
				int fd = ioctl(vm, KVM_CREATE_VCPU, (unsigned long)r->num);
				if (fd < 0) die("KVM_CREATE_VCPU");
				runs[r->num] = mmap(NULL, mmap_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
				if (runs[r->num] == MAP_FAILED) die("mmap kvm_run");
				vcpus[r->num] = fd;
				if ((int)r->num + 1 > nvcpu) nvcpu = r->num + 1;
				continue;
			}
			if (r->req == KVM_SET_USER_MEMORY_REGION) {
				/* Our slots map the memory file's regions in order: point them at ours. */
				struct kvm_userspace_memory_region *m = (void *)r->data;
				if (m->memory_size && mem_used + m->memory_size <= (uint64_t)st.st_size) {
					m->userspace_addr = (uint64_t)(uintptr_t)(mem + mem_used);
					mem_used += m->memory_size;
				}
			}
			long ret = r->kind == 1 ? ioctl(vm, r->req, (unsigned long)r->num)
						: ioctl(vm, r->req, r->data);
			if (ret < 0) {
				fprintf(stderr, "VM ioctl 0x%x: %s\n", r->req, strerror(errno));
				return 1;
			}
			continue;
		}
		uint32_t id = r->role - 2;
		if (id >= 64 || id >= (uint32_t)nvcpu) continue;
		long ret = r->kind == 1 ? ioctl(vcpus[id], r->req, (unsigned long)r->num)
					: ioctl(vcpus[id], r->req, r->data);
		if (ret < 0) {
			fprintf(stderr, "vCPU %u ioctl 0x%x: %s\n", id, r->req, strerror(errno));
			return 1;
		}
	}
	if (vm < 0 || nvcpu == 0) {
		fprintf(stderr, "the trace created no VM or vCPU\n");
		return 1;
	}
	for (int i = 0; i < nvcpu; i++) {
		runs[i]->immediate_exit = 1;
		if (ioctl(vcpus[i], KVM_RUN, 0) < 0 && errno != EINTR) die("KVM_RUN");
		if (i == 0) printf("c_restore_ms %.1f\n", now_ms() - t0);
	}
	printf("c_restore_ioctls %d of %zu recorded\n", replayed, n);
	return 0;
}
