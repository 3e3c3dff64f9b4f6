# Redis Monitor: one image for every process (web, worker, beat, migrate).
#   docker build -t redis-monitor .
#   docker run --rm -p 8000:8000 -e REDIS_URL=redis://your-redis:6379/0 redis-monitor redismon up
# The command picks the process: `redismon web` (default), `redismon migrate`,
# `celery -A workers.celery_app worker`, `celery -A workers.celery_app beat`.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

RUN groupadd --system --gid 10001 redismon \
 && useradd --system --uid 10001 --gid redismon --home-dir /var/lib/redismon \
        --shell /usr/sbin/nologin redismon \
 && install -d -o redismon -g redismon -m 0750 /var/lib/redismon

# The migrations ship inside the package (`migrations` beside `monitor`), so a plain
# `pip install .` is enough; the source stays root-owned and read-only for the process user.
WORKDIR /app
COPY . /app
RUN pip install . \
 && rm -rf /app/build /app/*.egg-info

# Containers listen on every interface; the data directory is the working directory, so the
# embedded SQLite defaults and celery beat's schedule file land somewhere writable.
ENV WEB_HOST=0.0.0.0 \
    WEB_PORT=8000
WORKDIR /var/lib/redismon
USER redismon:redismon
EXPOSE 8000

CMD ["redismon", "web"]
