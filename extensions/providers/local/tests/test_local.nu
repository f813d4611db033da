# Tests of the local provider scripts' pure helpers: `nu tests/test_local.nu`
use std/assert
use ../scripts/install.nu [ssh-package pick-manager]
use ../scripts/check.nu [ssh-args normalize-inventory]

def "test packages" [] {
    assert equal (ssh-package "apt-get") "openssh-client"
    assert equal (ssh-package "dnf") "openssh-clients"
    assert equal (pick-manager ["brew" "dnf"]) "dnf"
    assert equal (pick-manager []) ""
}

def "test ssh-args" [] {
    let args = (ssh-args "root" "10.0.0.5" 2222 5)
    assert equal ($args | first) "ssh"
    assert ("ConnectTimeout=5" in $args)
    assert equal ($args | last 2) ["root@10.0.0.5" "true"]
}

def "test inventory" [] {
    let inv = (normalize-inventory [{hostname: "a", address: "10.0.0.1"} {hostname: "b", address: "b.lan", ssh_port: 2222}])
    assert equal ($inv | get ssh_port) [22 2222]
}

def main [] {
    test packages
    test ssh-args
    test inventory
    print "local: 3 tests passed"
}
