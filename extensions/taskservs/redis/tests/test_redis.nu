# Tests of the redis scripts' pure helpers: `nu tests/test_redis.nu`
use std/assert
use ../scripts/install.nu [layout sysctls]
use ../scripts/configure.nu [conf-lines]
use ../scripts/check.nu [parse-info]
use ../scripts/uninstall.nu [remove-command]

const SETTINGS = {
    bind: ["127.0.0.1" "-::1"], port: 6379, protected_mode: true, data_dir: "/var/lib/redis", databases: 16,
    maxmemory_mb: 256, maxmemory_policy: "allkeys-lru", appendonly: true, appendfsync: "everysec", save: ["300 100"]
}

def "test layout" [] {
    assert equal (layout "apt-get").service "redis-server"
    assert equal (layout "apk").config "/etc/redis.conf"
    assert error { layout "pkg" }
    assert equal (sysctls | get "vm.overcommit_memory") 1
}

def "test conf-lines" [] {
    let lines = (conf-lines $SETTINGS "")
    assert ("bind 127.0.0.1 -::1" in $lines)
    assert ("maxmemory 256mb" in $lines)
    assert ("save 300 100" in $lines)
    assert not ($lines | any {|l| $l | str starts-with "requirepass" })
    assert equal (conf-lines $SETTINGS "s3cret" | last) "requirepass s3cret"
}

def "test info and uninstall" [] {
    let info = (parse-info "# Server\r\nredis_version:7.2.3\r\n\r\n# Memory\r\nused_memory:1048576\r\nmaxmemory:268435456\r\n")
    assert equal $info.redis_version "7.2.3"
    assert equal ($info.used_memory | into int) 1048576
    assert equal (remove-command "apt-get" true) ["apt-get" "purge" "-y" "redis-server"]
}

def main [] {
    test layout
    test conf-lines
    test info and uninstall
    print "redis: 3 tests passed"
}
