"""Create (or reuse) a Label Studio project for salient-instance boxes and upload the images.

Images are uploaded through the project's import endpoint rather than served from a
local-files storage. Upload works against any server, local or remote, with no server-side
settings; Label Studio then keeps its own copy (`/data/upload/<project>/<8 hex>-<name>`),
which `labelstudio_image_file_name` maps back to `<name>`. Local-files storage would avoid that
copy, but only works when the images sit on the server's own disk under
LOCAL_FILES_DOCUMENT_ROOT with LOCAL_FILES_SERVING_ENABLED=true, which cgc cannot arrange.

Idempotent: the project is found by its title, and images whose stored file name already
appears in a task of the project are not uploaded again.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cgc.annotate.labelstudio_client import (
    LabelStudioConnection,
    LabelStudioError,
    as_plain,
    iter_project_tasks,
    redact_url,
    stored_file_name,
    task_image_ref,
)
from cgc.annotate.import_parser import labelstudio_image_file_name
from cgc.annotate.labelstudio_config import MASK_TOOLS, control_tags, salient_label_config
from cgc.datasets.pictures import check_picture
from cgc.errors import InputError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp")
INSTRUCTIONS = (
    "<p>Draw <b>one box per salient instance</b>: every object that stands out and catches the eye "
    "gets its own tight rectangle labelled <i>salient</i>, even when objects touch or overlap. "
    "Do not box the background or parts of an object. If nothing stands out, submit without a box.</p>"
)
# Label Studio accepts up to 100 files per request by default; stay well below, and below its size cap.
UPLOAD_BATCH_FILES = 50
UPLOAD_BATCH_BYTES = 64 * 1024 * 1024


def list_images(image_dir: str | Path) -> list[Path]:
    image_dir = Path(image_dir)
    if not image_dir.is_dir():
        raise InputError("image folder not found", image_dir)
    images = sorted(p for p in image_dir.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if not images:
        raise InputError(f"no images ({', '.join(IMAGE_SUFFIXES)}) in the folder", image_dir)
    return images


def usable_pictures(paths: list[Path]) -> tuple[list[Path], list[str]]:
    """The pictures that pass `check_picture`, and one line for each that does not."""
    usable, left_out = [], []
    for path in paths:
        try:
            check_picture(path)
        except InputError as exc:
            left_out.append(str(exc))
        else:
            usable.append(path)
    return usable, left_out


@dataclass
class SetupSummary:
    project_id: int
    project_url: str
    created: bool
    uploaded: list[str] = field(default_factory=list)
    already_there: list[str] = field(default_factory=list)
    renamed: list[tuple[str, str]] = field(default_factory=list)
    left_out: list[str] = field(default_factory=list)  # one line per picture that cannot be used, naming it
    mask_tool_added: str | None = None  # the mask tool added to a reused project's labelling config
    model: str | None = None  # "connected" or "already connected" with --connect-model
    tasks_in_project: int = 0
    annotators_per_image: int = 5


def find_project_by_title(connection: LabelStudioConnection, title: str) -> dict[str, Any] | None:
    """The oldest project with exactly this title, if any."""
    with connection.errors("listing projects"):
        projects = [as_plain(p) for p in connection.client.projects.list(page_size=100)]
    same = sorted((p for p in projects if p.get("title") == title), key=lambda p: p.get("id", 0))
    return same[0] if same else None


def _upload_batches(paths: list[Path]) -> Iterator[list[Path]]:
    batch: list[Path] = []
    size = 0
    for path in paths:
        file_size = path.stat().st_size
        if batch and (len(batch) >= UPLOAD_BATCH_FILES or size + file_size > UPLOAD_BATCH_BYTES):
            yield batch
            batch, size = [], 0
        batch.append(path)
        size += file_size
    if batch:
        yield batch


def upload_images(connection: LabelStudioConnection, project_id: int, paths: list[Path]) -> int:
    """Upload image files as new tasks (one per image); returns the number of tasks created."""
    import mimetypes

    created = 0
    for batch in _upload_batches(paths):
        files = {
            path.name: (path.name, path.read_bytes(), mimetypes.guess_type(path.name)[0] or "application/octet-stream")
            for path in batch
        }
        answer = connection.post_files(
            f"api/projects/{project_id}/import", files, f"uploading images to project {project_id}", project_id
        )
        if isinstance(answer, dict):
            created += int(answer.get("task_count") or 0)
    return created


def setup_labelstudio_project(
    connection: LabelStudioConnection,
    image_dir: str | Path,
    title: str,
    annotators_per_image: int = 5,
    mask_tool: str = "none",
    description: str = "Salient instance boxes for cgc (CGCNet weak supervision)",
    connect_model: str | None = None,
    model_credentials: tuple[str, str] | None = None,
) -> SetupSummary:
    """Find or create the project, set its overlap, and upload the images it does not have yet.

    Pictures that cannot be used (unreadable, not a picture, above the size limit, a cut-off JPEG)
    are left out with their reason before anything is sent, so no task shows a broken image.
    """
    images, left_out = usable_pictures(list_images(image_dir))
    if not images:
        raise InputError(f"none of the pictures can be used; the first: {left_out[0]}", image_dir)
    stored = [stored_file_name(path.name) for path in images]
    duplicates = sorted({name for name in stored if stored.count(name) > 1})
    if duplicates:
        raise InputError(f"several images would be stored as the same name: {duplicates[:5]}", image_dir)

    overlap = {"maximum_annotations": annotators_per_image, "overlap_cohort_percentage": 100}
    project = find_project_by_title(connection, title)
    created = project is None
    if project is None:
        with connection.errors("creating the project"):
            project = as_plain(
                connection.client.projects.create(
                    title=title,
                    description=description,
                    label_config=salient_label_config(mask_tool),
                    expert_instruction=INSTRUCTIONS,
                    show_instruction=True,
                    show_skip_button=False,
                    enable_empty_annotation=True,
                    **overlap,
                )
            )
    project_id = int(project["id"])
    if not created and any(project.get(key) != value for key, value in overlap.items()):
        with connection.errors(f"updating project {project_id}", project_id):
            connection.client.projects.update(id=project_id, **overlap)
    mask_tool_added = None if created else add_mask_tool(connection, project, mask_tool)

    existing = set()
    for task in iter_project_tasks(connection, project_id, fields="task_only"):
        ref, _ = task_image_ref(task.get("data"))
        if ref:
            existing.add(labelstudio_image_file_name(ref))
    new = [path for path, name in zip(images, stored) if name not in existing]
    summary = SetupSummary(
        project_id=project_id,
        project_url=f"{redact_url(connection.url)}/projects/{project_id}/data",
        created=created,
        already_there=[path.name for path, name in zip(images, stored) if name in existing],
        renamed=[(path.name, name) for path, name in zip(images, stored) if path.name != name],
        annotators_per_image=annotators_per_image,
        left_out=left_out,
        mask_tool_added=mask_tool_added,
    )
    if new:
        made = upload_images(connection, project_id, new)
        if made != len(new):
            raise LabelStudioError(f"uploaded {len(new)} images to project {project_id} but it made {made} tasks")
        summary.uploaded = [path.name for path in new]
    summary.tasks_in_project = len(existing) + len(summary.uploaded)
    if connect_model:
        summary.model = connect_ml_backend(connection, project_id, connect_model, model_credentials)
    return summary


def add_mask_tool(connection: LabelStudioConnection, project: dict[str, Any], mask_tool: str) -> str | None:
    """Give a reused project the mask tool asked for; the tool's name if it was added.

    A labelling config cgc made gets cgc's config with the tool (existing boxes stay valid: only a
    tag is added). Another config is left alone, with an error that says how to add the tool by hand.
    """
    if mask_tool == "none":
        return None
    config = project.get("label_config") or "<View/>"
    tags = control_tags(config)
    if mask_tool in tags:
        return None
    project_id = int(project["id"])
    if tags != control_tags(salient_label_config("none")):
        tag = MASK_TOOLS[mask_tool]
        raise LabelStudioError(
            f"project {project_id}'s labelling config was not made by cgc, so --mask-tool cannot add the {tag} tool "
            f'to it: add <{tag} name="mask" toName="IMAGE"><Label value="salient"/></{tag}> in the project\'s '
            f"Settings > Labeling Interface (IMAGE: the name of its Image tag)")
    with connection.errors(f"adding the {mask_tool} tool to project {project_id}", project_id):
        connection.client.projects.update(id=project_id, label_config=salient_label_config(mask_tool))
    return mask_tool


def connect_ml_backend(connection: LabelStudioConnection, project_id: int, url: str,
                       credentials: tuple[str, str] | None = None) -> str:
    """Register a model server (e.g. `cgc serve`) as the project's ML backend, once; with `credentials` (user,
    password), Label Studio sends them to it as HTTP basic auth (a model already registered gets them too), and the
    webhook Label Studio makes for the model (annotations reported to /webhook) carries them as a header."""
    url = url.rstrip("/")
    auth: dict[str, Any] = {}
    if credentials is not None:
        auth = {"auth_method": "BASIC_AUTH", "basic_auth_user": credentials[0], "basic_auth_pass": credentials[1]}
    with connection.errors(f"listing the models of project {project_id}", project_id):
        known = [as_plain(backend) for backend in connection.client.ml.list(project=project_id)]
    same = [backend for backend in known if str(backend.get("url", "")).rstrip("/") == url]
    if same and not auth:
        return "already connected"
    with connection.errors(f"connecting the model at {url} to project {project_id}", project_id):
        if same:
            connection.client.ml.update(id=int(same[0]["id"]), project=project_id, url=url, **auth)
        else:
            connection.client.ml.create(project=project_id, url=url, title="cgc serve", is_interactive=True, **auth)
    if credentials is not None:
        give_webhook_credentials(connection, project_id, f"{url}/webhook", credentials)
    return "already connected; credentials updated" if same else "connected"


def give_webhook_credentials(connection: LabelStudioConnection, project_id: int, url: str,
                             credentials: tuple[str, str]) -> None:
    """The Authorization header on the project's webhook to `url` (Label Studio sends webhooks without the model's
    basic auth)."""
    import base64

    token = base64.b64encode(f"{credentials[0]}:{credentials[1]}".encode()).decode()
    with connection.errors(f"giving the webhook {url} the model's credentials", project_id):
        hooks = [as_plain(hook) for hook in connection.client.webhooks.list(project=str(project_id))]
        for hook in hooks:
            if str(hook.get("url", "")).rstrip("/") == url:
                headers = {**(hook.get("headers") or {}), "Authorization": f"Basic {token}"}
                connection.client.webhooks.update(id=int(hook["id"]), headers=headers)
