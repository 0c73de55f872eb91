// The lists of calls and types the inspector knows by name.
#include "inspect/known_calls.h"

namespace sluice::inspect::internal {
namespace {

const char* const kEngineTypes[] = {
    "std::mersenne_twister_engine<",    "std::linear_congruential_engine<",
    "std::subtract_with_carry_engine<", "std::discard_block_engine<",
    "std::independent_bits_engine<",    "std::shuffle_order_engine<"};
const char* const kLockTypes[] = {"std::lock_guard<", "std::unique_lock<", "std::scoped_lock<",
                                  "std::shared_lock<"};
const char* const kFileStreamTypes[] = {"std::basic_ifstream<",
                                        "std::basic_ofstream<",
                                        "std::basic_fstream<",
                                        "std::basic_filebuf<",
                                        "std::filesystem::directory_iterator",
                                        "std::filesystem::recursive_directory_iterator"};

template <size_t N>
bool StartsWithAny(const std::string& t, const char* const (&list)[N]) {
  for (const char* e : list) {
    if (StartsWith(t, e)) return true;
  }
  return false;
}

}  // namespace

const std::set<std::string> kCRandom = {"rand",
                                        "random",
                                        "drand48",
                                        "lrand48",
                                        "mrand48",
                                        "erand48",
                                        "nrand48",
                                        "jrand48",
                                        "getrandom",
                                        "arc4random",
                                        "arc4random_uniform",
                                        "arc4random_buf",
                                        "getentropy"};
const std::set<std::string> kCClocks = {"time", "clock", "clock_gettime", "gettimeofday",
                                        "timespec_get"};
const std::set<std::string> kSluiceClocks = {"MonotonicNanos", "ThreadCpuNanos", "ProcessCpuNanos"};
const std::set<std::string> kCIo = {
    "fopen",   "fdopen",      "freopen", "fread",    "fwrite",   "fgets",     "fgetc",
    "getc",    "fputs",       "fputc",   "putc",     "fprintf",  "fscanf",    "fclose",
    "fflush",  "fseek",       "ftell",   "open",     "openat",   "creat",     "read",
    "write",   "pread",       "pwrite",  "readv",    "writev",   "close",     "lseek",
    "stat",    "fstat",       "lstat",   "mmap",     "socket",   "connect",   "accept",
    "bind",    "listen",      "recv",    "recvfrom", "recvmsg",  "send",      "sendto",
    "sendmsg", "getaddrinfo", "glob",    "opendir",  "readdir",  "remove",    "rename",
    "unlink",  "mkdir",       "rmdir",   "popen",    "system",   "ioctl",     "poll",
    "select",  "epoll_wait",  "getline", "getdelim", "truncate", "ftruncate", "fsync"};
const std::set<std::string> kSleeps = {"sleep_for",  "sleep_until",  "wait_for",
                                       "wait_until", "try_lock_for", "try_lock_until",
                                       "nanosleep",  "usleep",       "sleep"};
const std::set<std::string> kLockMethods = {
    "lock", "try_lock", "lock_shared", "try_lock_shared", "try_lock_for", "try_lock_until"};
const std::set<std::string> kAccessors = {
    "operator[]",  "operator*", "operator->", "at",    "begin", "end",          "rbegin",
    "rend",        "data",      "front",      "back",  "find",  "lower_bound",  "upper_bound",
    "equal_range", "get",       "value",      "c_str", "str",   "operator bool"};

const std::set<std::string> kPassThrough = {"move",      "forward",  "begin",    "end",  "rbegin",
                                            "rend",      "cbegin",   "cend",     "data", "size",
                                            "ssize",     "empty",    "get",      "ref",  "cref",
                                            "addressof", "as_const", "distance", "next", "prev"};
const std::set<std::string> kRangeWriters = {
    "shuffle",          "random_shuffle",   "sort",        "stable_sort",  "partial_sort",
    "nth_element",      "reverse",          "rotate",      "fill",         "fill_n",
    "generate",         "generate_n",       "iota",        "replace",      "replace_if",
    "remove",           "remove_if",        "unique",      "partition",    "stable_partition",
    "next_permutation", "prev_permutation", "swap_ranges", "iter_swap",    "make_heap",
    "push_heap",        "pop_heap",         "sort_heap",   "inplace_merge"};
const std::set<std::string> kOutputWriters = {
    "copy",           "copy_n",    "copy_if",     "copy_backward",       "move",
    "move_backward",  "transform", "partial_sum", "adjacent_difference", "inclusive_scan",
    "exclusive_scan", "sample"};

bool IsEngineType(const std::string& t) { return StartsWithAny(t, kEngineTypes); }

bool IsLockType(const std::string& t) { return StartsWithAny(t, kLockTypes); }

bool IsFileStreamType(const std::string& t) { return StartsWithAny(t, kFileStreamTypes); }

}  // namespace sluice::inspect::internal
