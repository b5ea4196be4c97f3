FROM debian:bookworm
ONBUILD LABEL ai.backend.features="uid-match"
ONBUILD RUN echo child
LABEL ai.backend.features="batch uid-match"
