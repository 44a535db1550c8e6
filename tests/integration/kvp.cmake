# KVP integration tests: hv_kvp_daemon against the emulated KVP host
# (tests/emu/hv-emu-kvp) inside hv-sandbox, with the device at
# /dev/vmbus/hv_kvp and the pools at /var/lib/hyperv in the sandbox's tmpfs
# root (tests/integration/kvp-run.sh). They need root and FUSE, else they
# are skipped (77).

set(HV_EMU_KVP $<TARGET_FILE:hv-emu-kvp>)
set(HV_REFERENCE_KVP ${PROJECT_SOURCE_DIR}/.reference/usr/sbin/hv_kvp_daemon CACHE FILEPATH
  "The upstream hv_kvp_daemon the KVP tests and bench compare with (scripts/deps.sh)")
# How our daemon is told where the device and the pools are (the upstream
# daemon hard-codes both and takes only -n).
set(HV_KVP_OURS_ARGS "--device=/dev/vmbus/hv_kvp --pool-dir=/var/lib/hyperv" CACHE STRING
  "Arguments for build/hv_kvp/hv_kvp_daemon in the KVP integration tests and bench")

# hv_add_kvp_test(NAME DAEMON path ARGS "daemon args" [EXPECT "re@@re"] [REJECT "re@@re"]
#                 [EMU_ARGS hv-emu-kvp-option...] STEPS step...)
function(hv_add_kvp_test name)
  cmake_parse_arguments(K "" "DAEMON;ARGS;EXPECT;REJECT;TIMEOUT" "STEPS;EMU_ARGS" ${ARGN})
  if(NOT K_TIMEOUT)
    set(K_TIMEOUT 150)
  endif()
  add_test(NAME ${name}
    COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/kvp-run.sh ${HV_SANDBOX} ${HV_EMU_KVP} ${K_DAEMON}
      ${K_EMU_ARGS} ${K_STEPS})
  set_tests_properties(${name} PROPERTIES
    LABELS "integration;kvp" SKIP_RETURN_CODE 77 RUN_SERIAL TRUE TIMEOUT ${K_TIMEOUT}
    ENVIRONMENT "KVP_DAEMON_ARGS=${K_ARGS};KVP_EXPECT=${K_EXPECT};KVP_REJECT=${K_REJECT}")
endfunction()

# Every op in a valid pool, enumeration to the end, the auto pool, the IP
# info of the first adapter and the pool files afterwards.
set(KVP_BASIC
  set:1:alpha=1 set:1:beta=two set:1:alpha=one get:1:alpha get:1:missing
  set:3:host=external enumerate:1 delete:1:beta delete:1:beta enumerate:1 enumerate:3
  enumerate:2 get-ip-info:auto dump-pools)
set(KVP_BASIC_EXPECT
  "^T\\| 1 SET pool=1 key='alpha' value='1' status=0x00000000$"
  "^T\\| 5 GET pool=1 key='missing' status=0x80070103$"
  "^T\\| 7 ENUMERATE pool=1 index=0 status=0x00000000 rkey='alpha' rvalue='one'$"
  "^T\\| 8 ENUMERATE pool=1 index=1 status=0x00000000 rkey='beta' rvalue='two'$"
  "^T\\| 9 ENUMERATE pool=1 index=2 status=0x80070103$"
  "^T\\| 10 DELETE pool=1 key='beta' status=0x00000000$"
  "^T\\| 11 DELETE pool=1 key='beta' status=0x80070103$"
  "^T\\| 13 ENUMERATE pool=1 index=1 status=0x80070103$"
  "^T\\| 14 ENUMERATE pool=3 index=0 status=0x00000000 rkey='host' rvalue='external'$"
  # the driver version string of the handshake ("3.1") comes back from the auto pool
  "ENUMERATE pool=2 index=[0-9]+ status=0x00000000 rkey='IntegrationServicesVersion' rvalue='3.1'$"
  "ENUMERATE pool=2 index=[0-9]+ status=0x00000000 rkey='NetworkAddressIPv4' rvalue='[0-9]+\\.[0-9]"
  "GET_IP_INFO pool=0 mac=[0-9A-F:]{17} family=1 status=0x00000000 ip=[0-9]"
  "^T\\| pool 1 \\[0\\] key='alpha' value='one'$"
  "^T\\| pool 1: 1 records, fnv [0-9a-f]+, fnv0 [0-9a-f]+$"
  "^T\\| pool 3: 1 records, fnv [0-9a-f]+, fnv0 [0-9a-f]+$")
string(REPLACE ";" "@@" KVP_BASIC_EXPECT "${KVP_BASIC_EXPECT}")

# The reference: Debian's upstream hv_kvp_daemon 6.1. It answers a GET of an
# existing key with an empty value (it copies value_size bytes, and the
# driver sends value_size 0 for GET).
hv_add_kvp_test(reference-kvp-basic DAEMON ${HV_REFERENCE_KVP} ARGS -n
  EXPECT "${KVP_BASIC_EXPECT}@@^T\\| 4 GET pool=1 key='alpha' status=0x00000000 rvalue=''$"
  STEPS ${KVP_BASIC})

# A full file system (the pools bind-mounted from the sandbox's 32 MiB ext4
# scratch fs, filled to the last byte). Upstream rewrites a pool with
# fopen("w") + fwrite: the SET that still fits in the blocks the truncation
# freed succeeds, the next one exits the daemon (status 1) half-way through
# the rewrite; the records written before survive only because the rewrite
# failed beyond them.
set(KVP_ENOSPC set:1:a=1 set:1:b=2 fill set:1:c=3 set:1:d=4 enumerate:1 unfill set:1:e=5
  enumerate:1 dump-pools)
hv_add_kvp_test(reference-kvp-enospc DAEMON ${HV_REFERENCE_KVP} ARGS -n
  EMU_ARGS --restart --pools-on /mnt/fs0
  EXPECT "^T\\| 3 SET pool=1 key='c' value='3' status=0x00000000$@@^T\\| 4 SET pool=1 key='d' value='4' status=0x80004005 result=reset$@@^T\\| daemon exited: exit status 1$@@^T\\| 7 ENUMERATE pool=1 index=2 status=0x00000000 rkey='c' rvalue='3'$@@SET pool=1 key='e' value='5' status=0x00000000$"
  STEPS ${KVP_ENOSPC})

# The pools outlive the daemon.
set(KVP_RESTART set:1:persist=yes set:0:admin=x restart-daemon enumerate:1 enumerate:0 dump-pools)
set(KVP_RESTART_EXPECT
  "^T\\| daemon restarted by the script$@@^T\\| 3 ENUMERATE pool=1 index=0 status=0x00000000 rkey='persist' rvalue='yes'$@@^T\\| 5 ENUMERATE pool=0 index=0 status=0x00000000 rkey='admin' rvalue='x'$")
hv_add_kvp_test(reference-kvp-restart DAEMON ${HV_REFERENCE_KVP} ARGS -n
  EXPECT "${KVP_RESTART_EXPECT}" STEPS ${KVP_RESTART})

# The emulator is deterministic: the upstream daemon twice with the same seed
# gives the same transcript, crashes included (it indexes its pool table with
# the host's pool number and enumerates with a signed index unchecked:
# SIGSEGV on bad-pool and bad-index; a key without a NUL later makes DELETE's
# strcpy abort). --restart restarts it after each crash.
add_test(NAME reference-kvp-deterministic
  COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/kvp-compare.sh ${HV_SANDBOX} ${HV_EMU_KVP}
    ${HV_REFERENCE_KVP} -n ${HV_REFERENCE_KVP} -n 11 1500 all none)
set_tests_properties(reference-kvp-deterministic PROPERTIES
  LABELS "integration;kvp" SKIP_RETURN_CODE 77 RUN_SERIAL TRUE TIMEOUT 300)

if(TARGET hv_kvp_daemon)
  set(HV_KVP $<TARGET_FILE:hv_kvp_daemon>)

  # Ours: the same steps, and GET returns the value where the driver reads it.
  hv_add_kvp_test(kvp-ours-basic DAEMON ${HV_KVP} ARGS "${HV_KVP_OURS_ARGS}"
    EXPECT "${KVP_BASIC_EXPECT}@@^T\\| 4 GET pool=1 key='alpha' status=0x00000000 rvalue='one'$"
    STEPS ${KVP_BASIC})

  # Ours on a full file system: SETs fail with an error status, the daemon
  # stays, nothing written before is lost, and SET works again once there is
  # room.
  hv_add_kvp_test(kvp-ours-enospc DAEMON ${HV_KVP} ARGS "${HV_KVP_OURS_ARGS}"
    EMU_ARGS --pools-on /mnt/fs0
    EXPECT "^T\\| 4 SET pool=1 key='d' value='4' status=0x8[0-9a-f]{7}$@@ENUMERATE pool=1 index=0 status=0x00000000 rkey='a' rvalue='1'$@@ENUMERATE pool=1 index=1 status=0x00000000 rkey='b' rvalue='2'$@@SET pool=1 key='e' value='5' status=0x00000000$@@^hv-emu-kvp: DONE \\([0-9]+ requests, 0 restarts\\)$"
    REJECT "result=reset@@daemon exited@@partial record"
    STEPS ${KVP_ENOSPC})
  hv_add_kvp_test(kvp-ours-restart DAEMON ${HV_KVP} ARGS "${HV_KVP_OURS_ARGS}"
    EXPECT "${KVP_RESTART_EXPECT}" STEPS ${KVP_RESTART})

  # Ours over the netlink connector (0x9.1), hv-emu-kvp playing the driver's
  # side of it (tests/emu/emu-netlink.h: the daemon's --allow-user-peer).
  hv_add_kvp_test(kvp-ours-netlink DAEMON ${HV_KVP}
    ARGS "${HV_KVP_OURS_ARGS} --transport=netlink --allow-user-peer"
    EMU_ARGS --transport netlink
    EXPECT "${KVP_BASIC_EXPECT}@@^T\\| 4 GET pool=1 key='alpha' status=0x00000000 rvalue='one'$"
    STEPS ${KVP_BASIC})

  # Ours survives every invalid class without --restart (hv-emu-kvp exits 1
  # when the daemon dies) and keeps its pool files well-formed.
  hv_add_kvp_test(kvp-ours-random-invalid DAEMON ${HV_KVP} ARGS "${HV_KVP_OURS_ARGS}"
    EMU_ARGS --quiet --seed 5 --invalid all TIMEOUT 300
    EXPECT "^hv-emu-kvp: DONE \\([0-9]+ requests, 0 restarts\\)$"
    REJECT "bytes after the NUL@@partial record@@result=(reset|timeout)"
    STEPS random:3000 dump-pools)

  # Upstream and ours, same script, same seed: transcripts and pool files
  # compared byte for byte, with the accepted differences as narrow filters
  # (kvp-compare.sh, FILTERS upstream-vs-ours). The random workload leaves
  # out the invalid classes that crash the upstream daemon (bad-pool,
  # bad-index) or make it store a malformed record (no-nul, zero-key);
  # kvp-ours-random-invalid covers those for ours.
  add_test(NAME kvp-compare-upstream
    COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/kvp-compare.sh ${HV_SANDBOX} ${HV_EMU_KVP}
      ${HV_REFERENCE_KVP} -n ${HV_KVP} "${HV_KVP_OURS_ARGS}" 7 3000 long-key,long-value,bad-op
      upstream-vs-ours)
  set_tests_properties(kvp-compare-upstream PROPERTIES
    LABELS "integration;kvp" SKIP_RETURN_CODE 77 RUN_SERIAL TRUE TIMEOUT 300)
endif()

# The KVP benchmark keeps working: a tiny run (10 and 100 records, 20 ops
# each); the figures are not judged here. With our daemon built it is
# measured too and the ratios are printed.
set(kvp_bench_ours "")
set(kvp_bench_expect "DELETE +100 upstream +20 +20 ")
if(TARGET hv_kvp_daemon)
  set(kvp_bench_ours --ours $<TARGET_FILE:hv_kvp_daemon> --ours-args "${HV_KVP_OURS_ARGS}")
  set(kvp_bench_expect "DELETE +100 +[0-9.]+ +[0-9.]+ +[0-9.]+ +[0-9.]+\nmemory +10 +RSS [0-9.]+, peak [0-9.]+\nmemory +100 +RSS [0-9.]+, peak [0-9.]+\n*$")
endif()
add_test(NAME bench-kvp-run-smoke
  COMMAND ${PROJECT_SOURCE_DIR}/tests/bench/run-kvp-bench.sh --build ${CMAKE_BINARY_DIR}
    --upstream ${HV_REFERENCE_KVP}
    --records "10 100" --count 20 --idle 300 --out - ${kvp_bench_ours})
set_tests_properties(bench-kvp-run-smoke PROPERTIES
  LABELS "bench;kvp" SKIP_RETURN_CODE 77 RUN_SERIAL TRUE TIMEOUT 300
  PASS_REGULAR_EXPRESSION "${kvp_bench_expect}")
