# syntax=docker/dockerfile:1.4
FROM ubuntu:22.04
RUN <<EOT bash
set -e
apt-get update
echo "LABEL ai.backend.kernelspec=5" > /tmp/not-an-instruction
FROM not-a-stage
EOT
COPY <<-CONF /etc/app.conf
	key=value
	USER nobody
	CONF
RUN echo done
