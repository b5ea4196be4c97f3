FROM ubuntu:22.04
# CRLF line endings, as written on Windows
RUN apt-get update && \
    apt-get install -y python3
LABEL ai.backend.kernelspec=1
ENTRYPOINT /usr/local/bin/start.sh --serve
