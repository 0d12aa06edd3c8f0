"""``make docker-check``: build docker/Dockerfile and run docker/compose.yaml for real.

The check needs a Docker engine but no image registry: it builds stand-in base images from
Debian packages (``bases``), passes them through the Dockerfile's ``PYTHON_IMAGE`` /
``NODE_IMAGE`` build arguments, checks the image (``image``) and then the compose stack
(``stack``), and writes what it measured to ``bench/results/docker_check.json`` (``report``).
Everything it creates carries the label in ``engine.LABEL`` or the compose project name in
``stack.PROJECT``, and only those are removed afterwards. docs/docker.md describes it.
"""
