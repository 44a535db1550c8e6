# FCOPY (issue 5): hv_fcopy_daemon against the scripted host hv-emu-fcopy on
# the emulated Linux <= 6.9 char device, inside hv-sandbox on scratch file
# systems. Included from tests/integration/CMakeLists.txt.

set(HV_EMU_FCOPY $<TARGET_FILE:hv-emu-fcopy>)
set(HV_FCOPY $<TARGET_FILE:hv_fcopy_daemon>)

# hv_add_fcopy_scenario(NAME FS types [SIZE mib (default 320; xfs and btrfs need about that)] [CONFIG text] [DAEMON path] [EXPECT "re@@re"]
#                       [SETUP dash-command] [COPY exe...] [ARGS daemon-arg...]
#                       [ARGS_EMU hv-emu-fcopy-option...] STEPS step...)
function(hv_add_fcopy_scenario name)
  cmake_parse_arguments(S "" "FS;SIZE;CONFIG;DAEMON;TIMEOUT;EXPECT;SETUP" "STEPS;ARGS;ARGS_EMU;COPY" ${ARGN})
  if(NOT S_SIZE)
    set(S_SIZE 320)
  endif()
  if(NOT S_TIMEOUT)
    set(S_TIMEOUT 120)
  endif()
  if(NOT S_DAEMON)
    set(S_DAEMON ${HV_FCOPY})
    set(daemon_args --daemon-arg=--runtime-dir=/run/hyperv-daemons)
    if(S_CONFIG)
      list(APPEND daemon_args --daemon-arg=--config=/tmp/test.conf)
    endif()
  else()
    set(daemon_args --daemon-arg=-n)
  endif()
  foreach(a ${S_ARGS})
    list(APPEND daemon_args --daemon-arg=${a})
  endforeach()
  add_test(NAME ${name}
    COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/fcopy-run.sh
      ${HV_SANDBOX} ${HV_EMU_FCOPY} ${S_DAEMON} "${S_FS}" ${S_SIZE} "${S_CONFIG}" ${S_TIMEOUT}
      "${S_EXPECT}" ${daemon_args} ${S_ARGS_EMU} -- ${S_STEPS})
  set_tests_properties(${name} PROPERTIES
    LABELS integration SKIP_RETURN_CODE 77 RUN_SERIAL TRUE TIMEOUT 240)
  if(S_SETUP OR S_COPY)
    string(REPLACE ";" " " copy "${S_COPY}")
    set_tests_properties(${name} PROPERTIES
      ENVIRONMENT "FCOPY_SETUP=${S_SETUP};FCOPY_COPY=${copy}")
  endif()
endfunction()

# Sizes around the 6,144-byte fragment, and 100 MiB, each read back and compared.
set(FCOPY_SIZES wait-register
  copy:gen/0:/mnt/fs0/zero copy:gen/1:/mnt/fs0/one copy:gen/6143:/mnt/fs0/frag-1
  copy:gen/6144:/mnt/fs0/frag copy:gen/6145:/mnt/fs0/frag+1 copy:gen/100M:/mnt/fs0/big
  expect-mode:/mnt/fs0/big:0644 expect-no-temp:/mnt/fs0)
hv_add_fcopy_scenario(fcopy-sizes-ext4 FS ext4 STEPS ${FCOPY_SIZES}
  EXPECT "copied 104857600 bytes to /mnt/fs0/big in .*content verified")
hv_add_fcopy_scenario(fcopy-sizes-xfs FS xfs STEPS ${FCOPY_SIZES})
hv_add_fcopy_scenario(fcopy-sizes-btrfs FS btrfs STEPS ${FCOPY_SIZES})

# Names in several scripts (UTF-16 on the host, UTF-8 from the kernel).
hv_add_fcopy_scenario(fcopy-unicode-names FS ext4,btrfs STEPS wait-register
  "copy:gen/10K:/mnt/fs0/Résumé.txt"
  "copy:gen/10K:/mnt/fs0/文件.bin"
  "copy:gen/10K:/mnt/fs0/Привет мир.doc"
  "copy:gen/10K:/mnt/fs0/مرحبا.txt"
  "copy:gen/10K:/mnt/fs0/😀 smile 🎉.png"
  "copy:gen/1:/mnt/fs1/Ünïcødé dir/ファイル.txt:p"
  EXPECT "Copy to /mnt/fs0/文件.bin complete@@copied 1 bytes to /mnt/fs1/Ünïcødé dir/ファイル.txt")

# Overwrite and create-path; a missing directory without CREATE_PATH fails
# (HV_E_FAIL, as upstream); an existing file without OVER_WRITE is refused
# with HV_ERROR_ALREADY_EXISTS and left as it was.
hv_add_fcopy_scenario(fcopy-overwrite-create-path FS ext4 STEPS wait-register
  copy:gen/5000:/mnt/fs0/f copy:gen/7000:/mnt/fs0/f=exists copy:gen/9000:/mnt/fs0/f:o
  copy:gen/10:/mnt/fs0/new/a/b/f=fail expect-absent:/mnt/fs0/new
  copy:gen/10:/mnt/fs0/new/a/b/f:p copy:gen/20:/mnt/fs0/new/a/b/f:op
  expect-mode:/mnt/fs0/new/a/b:0755
  EXPECT "failed to check the target: File exists; answering 0x80070050@@failed to open the directory: No such file or directory; answering 0x80004005")

# The host cancels part-way: nothing under the final name, no temporary file,
# an existing file untouched (unnamed and named temporary files).
hv_add_fcopy_scenario(fcopy-cancel FS ext4,xfs STEPS wait-register
  copy:gen/1M:/mnt/fs0/c:c100000 copy:gen/10:/mnt/fs1/keep copy:gen/1M:/mnt/fs1/keep:oc6144
  expect-no-temp:/mnt/fs0 expect-no-temp:/mnt/fs1
  EXPECT "cancelled by the host after 104448 bytes")
hv_add_fcopy_scenario(fcopy-cancel-named-temp FS ext4 CONFIG "[fcopy]\ntmpfile=false\n"
  STEPS wait-register copy:gen/1M:/mnt/fs0/c:c100000 copy:gen/20K:/mnt/fs0/d
  EXPECT "named temporary file")

# The daemon is killed mid-copy and restarted: no partial file under the
# final name, and (named temporary files) the leftover removed at start-up.
hv_add_fcopy_scenario(fcopy-restart-mid-copy FS ext4 STEPS wait-register
  copy:gen/2M:/mnt/fs0/r:k500000 copy:gen/2M:/mnt/fs0/r)
hv_add_fcopy_scenario(fcopy-restart-mid-copy-named-temp FS xfs CONFIG "[fcopy]\ntmpfile=false\n"
  EXPECT "Removed /mnt/fs0/\\.hv-fcopy-[0-9a-f]+, the temporary file of a copy a previous daemon did not finish"
  STEPS wait-register copy:gen/2M:/mnt/fs0/r:k500000 copy:gen/2M:/mnt/fs0/r)

# Disk full: HV_ERROR_DISK_FULL, then the host's CANCEL leaves nothing.
hv_add_fcopy_scenario(fcopy-enospc FS ext4 SIZE 32 STEPS wait-register
  copy:gen/64M:/mnt/fs0/huge=full expect-no-temp:/mnt/fs0 copy:gen/1M:/mnt/fs0/after
  EXPECT "failed to write .*No space left on device; answering 0x80070070")

# I/O errors (EIO): the target's file system is shut down mid-file like a
# dying disk (FS_IOC_SHUTDOWN; the journal flushed, so that a named
# temporary file is still there after the remount). The WRITE fails, the host
# cancels; the daemon goes on serving (a copy to the other file system, a
# START on the dead one refused); after a remount (a reboot) no partial file
# has the final name, no temporary file is left, what was copied before is
# intact, and copies work again. With named temporary files the restarted
# daemon removes the one the failed cancel could not.
set(FCOPY_EIO wait-register copy:gen/1M:/mnt/fs0/before copy:gen/2M:/mnt/fs0/e:e500000=fail
  copy:gen/100K:/mnt/fs1/during copy:gen/10:/mnt/fs0/dead=fail remount:/mnt/fs0)
set(FCOPY_EIO_AFTER expect-absent:/mnt/fs0/e expect-no-temp:/mnt/fs0
  expect-gen:/mnt/fs0/before:1M copy:gen/1M:/mnt/fs0/after)
hv_add_fcopy_scenario(fcopy-eio FS ext4,ext4 STEPS ${FCOPY_EIO} ${FCOPY_EIO_AFTER}
  EXPECT "failed to write .*Input/output error; answering 0x80004005@@Copy to /mnt/fs0/dead refused .*Input/output error@@copied 1048576 bytes to /mnt/fs0/after")
hv_add_fcopy_scenario(fcopy-eio-named-temp FS xfs,ext4 CONFIG "[fcopy]\ntmpfile=false\n"
  STEPS ${FCOPY_EIO} kill:TERM wait-exit start-daemon wait-register ${FCOPY_EIO_AFTER}
  EXPECT "failed to write .*Input/output error; answering 0x80004005@@its temporary file could not be removed \\(Input/output error\\), the next start removes it@@Removed /mnt/fs0/\\.hv-fcopy-[0-9a-f]+, the temporary file of a copy")
# The driver reset right after a WRITE is posted (flag r): the daemon drops
# the copy, reopens and registers again. A WRITE that blocks past the
# driver's timeout (flag t: the target file system frozen, 1 s timeout):
# the daemon's late reply is refused, the host cancels. Either way nothing
# of the copy is left, and the same copies then succeed.
hv_add_fcopy_scenario(fcopy-reset-and-late-reply FS ext4,xfs STEPS wait-register
  copy:gen/1M:/mnt/fs0/r:r300000 copy:gen/1M:/mnt/fs1/t:t300000
  copy:gen/1M:/mnt/fs0/r copy:gen/1M:/mnt/fs1/t expect-no-temp:/mnt/fs0 expect-no-temp:/mnt/fs1
  EXPECT "Copy to /mnt/fs0/r abandoned: the driver closed or reset@@the daemon registered again after the reset@@Failed to send the reply to /dev/vmbus/hv_fcopy: Invalid argument@@the daemon's reply came [0-9]+ ms after the timeout and was refused@@copied 1048576 bytes to /mnt/fs1/t")
# Hostile or broken input: a symbolic link planted in the path, "..", a
# too-short message, an unknown op, a fragment above 6,144 bytes.
hv_add_fcopy_scenario(fcopy-hostile-input FS ext4,ext4
  SETUP "ln -s /mnt/fs1 /mnt/fs0/link" COPY /usr/bin/ln
  STEPS wait-register copy:gen/10:/mnt/fs0/link/x=fail copy:gen/10:/mnt/fs0/link/sub/x:p=fail
  expect-absent:/mnt/fs1/x expect-absent:/mnt/fs1/sub
  copy:gen/10:/mnt/fs0/../fs1/y=invalid expect-absent:/mnt/fs1/y
  raw:00000000=invalid raw:090000000000000000000000000000000000000000000000000000000000000000000000=not-supported
  copy:gen/10:/mnt/fs0/ok
  EXPECT "failed to open the directory: Too many levels of symbolic links@@Malformed request from the host \\(4 bytes\\)")

# allowed-dirs and the configured file mode.
hv_add_fcopy_scenario(fcopy-allowed-dirs FS ext4,ext4
  CONFIG "[fcopy]\nallowed-dirs=/mnt/fs1/in\nfile-mode=0600\n"
  STEPS wait-register copy:gen/10:/mnt/fs0/x=fail copy:gen/10:/mnt/fs1/x=fail
  copy:gen/10:/mnt/fs1/in/deep/x:p expect-mode:/mnt/fs1/in/deep/x:0600
  EXPECT "failed to check the allowed directories: Permission denied")

# The same kind of script against Debian's upstream hv_fcopy_daemon (the
# <= 6.9 char device daemon, unpacked into .reference/ by scripts/deps.sh;
# skipped without it). It reads and answers with pread()/pwrite() at offset
# 0, which the kernel's misc device accepts and the emulated (nonseekable
# FUSE) device refuses with ESPIPE: tests/emu/seekless-shim.c retries those
# as read()/write() for it, nothing else changes. Upstream creates a missing
# directory only up to the last '/' of the path, so CREATE_PATH is sent with
# a trailing '/' there (flag s); ours creates every component either way.
# Known differences, not tested here (tools/hv/hv_fcopy_daemon.c): files are
# 0744; a copy killed mid-way leaves a partial file under the final name; a
# START while a copy is open leaks the old descriptor and leaves that file
# partial; symbolic links in the path are followed; a short write on a full
# disk is answered HV_E_FAIL instead of HV_ERROR_DISK_FULL.
set(HV_REFERENCE_FCOPY ${PROJECT_SOURCE_DIR}/.reference/usr/sbin/hv_fcopy_daemon)
set(FCOPY_SHIM $<TARGET_FILE:hv-seekless-shim>)
hv_add_fcopy_scenario(reference-fcopy-copies FS ext4 DAEMON ${HV_REFERENCE_FCOPY}
  COPY ${FCOPY_SHIM} ARGS_EMU --daemon-preload=/bin/seekless-shim.so
  STEPS wait-register copy:gen/0:/mnt/fs0/zero copy:gen/6145:/mnt/fs0/frag+1
  copy:gen/100M:/mnt/fs0/big "copy:gen/10K:/mnt/fs0/Résumé 文件 😀.txt"
  copy:gen/10:/mnt/fs0/big=exists copy:gen/10:/mnt/fs0/big:o copy:gen/10:/mnt/fs0/n/a/f:ps
  copy:gen/1M:/mnt/fs0/c:c100000 expect-mode:/mnt/fs0/big:0744)
# Ours on the same directory forms.
hv_add_fcopy_scenario(fcopy-trailing-slash FS ext4 STEPS wait-register
  copy:gen/10:/mnt/fs0/n/a/f:ps copy:gen/10:/mnt/fs0/n/a/g:s copy:gen/10:/mnt/fs0/h:s
  expect-mode:/mnt/fs0/n/a/f:0644)

# The same daemon over the VMBus ring of Linux >= 6.10 (uio_hv_generic,
# emulated by tests/emu/emu-vmbus.c): IC negotiation first, names as raw
# UTF-16 from the host, the IC status in each reply.
set(FCOPY_UIO ARGS_EMU --transport=uio)
hv_add_fcopy_scenario(fcopy-uio-sizes FS ext4 ${FCOPY_UIO} STEPS ${FCOPY_SIZES}
  EXPECT "IC versions agreed: framework 3.0, service 1.1@@Using the uio transport on emu:@@copied 104857600 bytes to /mnt/fs0/big in .*content verified")
hv_add_fcopy_scenario(fcopy-uio-names-and-flags FS xfs ${FCOPY_UIO} STEPS wait-register
  "copy:gen/10K:/mnt/fs0/Résumé.txt" "copy:gen/10K:/mnt/fs0/文件 😀.bin"
  "copy:gen/1:/mnt/fs0/Ünïcødé dir/ファイル.txt:p" copy:gen/5000:/mnt/fs0/f
  copy:gen/7000:/mnt/fs0/f=exists copy:gen/9000:/mnt/fs0/f:o copy:gen/1M:/mnt/fs0/c:c100000
  copy:gen/10:/mnt/fs0/../etc/x=invalid raw:00000000=invalid
  raw:090000000000000000000000000000000000000000000000000000000000000000000000=not-supported
  expect-no-temp:/mnt/fs0
  EXPECT "Copy to /mnt/fs0/文件 😀.bin complete")
hv_add_fcopy_scenario(fcopy-uio-enospc FS ext4 SIZE 32 ${FCOPY_UIO} STEPS wait-register
  copy:gen/64M:/mnt/fs0/huge=full expect-no-temp:/mnt/fs0 copy:gen/1M:/mnt/fs0/after
  EXPECT "No space left on device; answering 0x80070070")
# Over the ring, the daemon killed mid-copy of a big file and restarted: its
# connection ends, the channel is released (indices reset), the new daemon
# opens it and negotiates again; nothing under the final name, the next
# copies work, and the restarted daemon removes a named temporary file.
# Then a scripted kill/start, and a 100 MiB copy on the reopened channel.
hv_add_fcopy_scenario(fcopy-uio-restart-mid-copy FS ext4 ${FCOPY_UIO} STEPS wait-register
  copy:gen/32M:/mnt/fs0/r:k5000000 copy:gen/32M:/mnt/fs0/r copy:gen/1M:/mnt/fs0/s
  kill:KILL wait-exit start-daemon wait-register copy:gen/8M:/mnt/fs0/big
  expect-no-temp:/mnt/fs0
  EXPECT "SIGKILL to the daemon after 5001216 of 33554432 bytes@@channel released \\(1 so far\\)@@channel open #2\\)@@restarted daemon left nothing@@copied 33554432 bytes to /mnt/fs0/r@@channel open #3\\)@@copied 8388608 bytes to /mnt/fs0/big")
hv_add_fcopy_scenario(fcopy-uio-restart-mid-copy-named-temp FS xfs ${FCOPY_UIO}
  CONFIG "[fcopy]\ntmpfile=false\n"
  EXPECT "Removed /mnt/fs0/\\.hv-fcopy-[0-9a-f]+, the temporary file of a copy a previous daemon did not finish"
  STEPS wait-register copy:gen/32M:/mnt/fs0/r:k5000000 copy:gen/32M:/mnt/fs0/r)
# The host resets the channel (rescind and new offer) right after posting a
# WRITE: the daemon sees its interrupt fd end, drops the copy, reopens and
# negotiates again; nothing is left (unnamed and named temporary files).
hv_add_fcopy_scenario(fcopy-uio-reset FS ext4,xfs ${FCOPY_UIO} STEPS wait-register
  copy:gen/4M:/mnt/fs0/r:r300000 copy:gen/4M:/mnt/fs0/r copy:gen/1M:/mnt/fs1/s:r6144
  copy:gen/1M:/mnt/fs1/s expect-no-temp:/mnt/fs0 expect-no-temp:/mnt/fs1
  EXPECT "Copy to /mnt/fs0/r abandoned: the driver closed or reset emu:@@channel reset \\(rescind, new offer\\)@@channel open #2\\)@@nothing of the copy to /mnt/fs0/r is left after the driver reset@@copied 4194304 bytes to /mnt/fs0/r@@channel open #3\\)@@copied 1048576 bytes to /mnt/fs1/s")
hv_add_fcopy_scenario(fcopy-uio-reset-named-temp FS xfs ${FCOPY_UIO}
  CONFIG "[fcopy]\ntmpfile=false\n"
  STEPS wait-register copy:gen/4M:/mnt/fs0/r:r300000 copy:gen/4M:/mnt/fs0/r
  expect-no-temp:/mnt/fs0
  EXPECT "Copy to /mnt/fs0/r abandoned: the driver closed or reset emu:.*temporary file removed@@channel open #2\\)@@copied 4194304 bytes to /mnt/fs0/r")
hv_add_fcopy_scenario(fcopy-uio-symlink FS ext4,ext4 ${FCOPY_UIO}
  SETUP "ln -s /mnt/fs1 /mnt/fs0/link" COPY /usr/bin/ln
  STEPS wait-register copy:gen/10:/mnt/fs0/link/x=fail expect-absent:/mnt/fs1/x
  EXPECT "Too many levels of symbolic links")

add_test(NAME fcopy-cli-version COMMAND hv_fcopy_daemon --version)
set_tests_properties(fcopy-cli-version PROPERTIES LABELS cli
  PASS_REGULAR_EXPRESSION "^hv_fcopy_daemon \\(hyperv-daemons\\) [0-9]")
hv_add_fcopy_scenario(fcopy-uio-eio FS ext4,ext4 ${FCOPY_UIO} STEPS ${FCOPY_EIO} ${FCOPY_EIO_AFTER}
  EXPECT "failed to write .*Input/output error; answering 0x80004005")
