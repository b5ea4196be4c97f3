# escape=`
FROM mcr.microsoft.com/windowsservercore
LABEL description="a backslash C:\path stays" `
      ai.backend.runtime-type="app"
RUN echo one `
    && echo two
