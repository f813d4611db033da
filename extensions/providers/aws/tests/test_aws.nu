# Tests of the aws provider scripts' pure helpers: `nu tests/test_aws.nu`
use std/assert
use ../scripts/install.nu [aws-arch installer-url installer-args]
use ../scripts/check.nu [parse-version]

def "test aws-arch" [] {
    assert equal (aws-arch "x86_64") "x86_64"
    assert equal (aws-arch "arm64") "aarch64"
    assert error { aws-arch "riscv64" }
}

def "test installer" [] {
    assert equal (installer-url "2.13.25" "x86_64") "https://awscli.amazonaws.com/awscli-exe-linux-x86_64-2.13.25.zip"
    assert equal (installer-args "/usr/local" false) ["--install-dir" "/usr/local/aws-cli" "--bin-dir" "/usr/local/bin"]
    assert equal (installer-args "/opt" true | last) "--update"
}

def "test parse-version" [] {
    assert equal (parse-version "aws-cli/2.13.25 Python/3.11.6 Linux/6.1.0 exe/x86_64.debian.12") "2.13.25"
    assert equal (parse-version "command not found") ""
}

def main [] {
    test aws-arch
    test installer
    test parse-version
    print "aws: 3 tests passed"
}
