FROM ubuntu:22.04
RUN echo no trailing newline