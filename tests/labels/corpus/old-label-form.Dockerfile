FROM centos:7
LABEL ai.backend.base-distro centos7.9
LABEL vendor Example Corp
LABEL ai.backend.features batch  uid-match
