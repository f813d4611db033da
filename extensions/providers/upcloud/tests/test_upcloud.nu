# Tests of the upcloud provider scripts' pure helpers: `nu tests/test_upcloud.nu`
use std/assert
use ../scripts/install.nu [normalize-arch release-url]
use ../scripts/check.nu [parse-version parse-credentials]

def "test normalize-arch" [] {
    assert equal (normalize-arch "x86_64") "x86_64"
    assert equal (normalize-arch "aarch64") "arm64"
    assert error { normalize-arch "s390x" }
}

def "test release-url" [] {
    let url = (release-url "3.1.0" "linux" "x86_64")
    assert ($url | str ends-with "/v3.1.0/upcloud-cli_3.1.0_linux_x86_64.tar.gz")
}

def "test credentials" [] {
    let creds = (parse-credentials "# upcloud\nUPCLOUD_USERNAME=ops\n\nUPCLOUD_PASSWORD = s3cret\n")
    assert equal $creds.UPCLOUD_USERNAME "ops"
    assert equal $creds.UPCLOUD_PASSWORD "s3cret"
    assert equal (parse-version "upctl version: 3.1.0") "3.1.0"
}

def main [] {
    test normalize-arch
    test release-url
    test credentials
    print "upcloud: 3 tests passed"
}
