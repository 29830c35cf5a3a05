"""What one request may ask of this server: every cap in one place, each with its reason.

They are the app's policy, not the library's: the app passes `LIMITS` (with its settings applied,
`ui.context`) to the library's functions that read user input, which take their caps as arguments.
A request over a cap is refused with a message before any model runs. docs/deploy.md's "Limits"
table lists these same values (a test keeps the two in step).
"""

from dataclasses import dataclass


@dataclass(frozen=True)
class Limits:
    # request size
    request_bytes: int = 1 << 20  # the JSON body of any request but an upload: prompts are a few KB
    upload_bytes: int = 20_000_000  # one uploaded file: a 50 MP JPEG is about 15 MB
    text_bytes: int = 16_384  # one text input (JSON prompts, a model name): 64 points are about 1.5 KB
    json_depth: int = 4  # [[[x, y], ...] per object] is 3 levels deep
    # work per request
    image_pixels: int = 50_000_000  # a photo or its ground truth: a 50 MP camera; decoded within the deadline
    score_pixels: int = 16_777_216  # a prediction scored at its own size (4096x4096): boundary F is ~O(pixels)
    class_ids: int = 256  # distinct values in a label map: more means a photo, not labels
    points_per_object: int = 64  # SAM's prompt tokens attend to each other: time and memory grow as N^2
    points_per_request: int = 256
    objects_per_request: int = 32
    # what a request produces: its photo's pixels times the masks it returns at that size. One object's
    # mask is made, encoded and dropped before the next, but each costs a resize and an RLE pass over
    # every pixel: 8 objects at 50 MP, 32 at 12 MP
    output_pixels: int = 400_000_000
    everything_grid: int = 16  # points per side of SAM's automatic prompts: 256 prompts, the heaviest SAM job
    # deadlines, in seconds: past one, the job stops at its next layer and the worker is free again
    segment_seconds: float = 60  # one model on one photo: ~0.3 s here
    compare_seconds: float = 180  # every model, with TTA (6 passes each) and CRF: ~20 s here
    sam_seconds: float = 300  # a first vit_h embedding on 2 CPU cores takes ~60 s; later clicks ~0.1 s
    score_seconds: float = 30  # metrics on two 16 MP label maps: ~5 s here
    learn_seconds: float = 120  # 50 training steps of two small U-Nets: ~10 s here
    # fairness: every count is taken when a request arrives, so a burst cannot outrun it
    jobs_per_client: int = 3  # queued or running, per browser session
    jobs_per_address: int = 12  # queued or running, per IP address (several tabs, several scripts)
    queue_size: int = 256  # places in the queue; the last jobs_per_address go to clients that hold none
    queue_work_seconds: float = 900  # estimated work the queue may hold: 7.5 minutes of both workers
    light_job_seconds: float = 2  # a job estimated at most this is never refused for the queue's work
    fair_window_seconds: float = 60  # an address's work within this counts against its next job
    uploads_per_address: int = 8  # uploads streaming at once, per address (a page sends two; several tabs or people)
    requests_per_address: int = 32  # other requests being read at once, per address (each under request_bytes)
    idle_body_seconds: float = 20  # a request body that sends nothing this long is stopped
    header_seconds: float = 10  # a request's head (line and headers) must arrive within this: a few ms normally
    connections_per_address: int = 512  # open at once (not behind a Space's proxy): a browser opens about 6
    bytes_per_address: int = 300_000_000  # request bytes per address per window: 15 photos at the upload cap
    files_per_address: int = 600  # uploaded files per address per window: a visitor uploads a few a minute
    bytes_window_seconds: int = 600
    files_per_upload: int = 4  # files in one upload request: the page and gradio_client send one each
    # disk: what uploads and results may hold in all, oldest evicted first past either (swept once a
    # minute, and as soon as the uploads counted since the last sweep could pass it)
    storage_bytes: int = 8_000_000_000  # a sixth of a Space's 50 GB disk: the models' cache has the rest
    storage_files: int = 40_000  # each a folder too, and a sweep walks every one: the count bounds its time
    # housekeeping
    keep_files_seconds: int = 3600  # uploads and results are deleted an hour after they were made


LIMITS = Limits()


def check_output(size: tuple[int, int], count: int, limits: Limits) -> None:
    """ValueError unless `count` masks of `size` (H, W) fit within `limits.output_pixels`."""
    h, w = size
    if h * w * count > limits.output_pixels:
        most = max(1, limits.output_pixels // (h * w))
        raise ValueError(f"{count} objects on a {w}x{h} photo is {h * w * count / 1e6:,.0f} million mask pixels; "
                         f"the limit is {limits.output_pixels / 1e6:,.0f} million: send at most {most} objects at "
                         f"this size, or a smaller photo")
