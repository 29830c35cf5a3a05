"""Every text input of the API fuzzed with Hypothesis, through the launched app by raw HTTP (so
values of any JSON type reach the server, not only strings): always an answer, either a result or
a message from the app's own handler; never a traceback, a 500 or a server path; and the server
answers a normal request afterwards."""

import json
import re
import uuid

import forge
import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

pytestmark = pytest.mark.slow  # the module's tests take seconds each on 2 cores (docs/testing.md)


def json_values(finite: bool):
    return st.recursive(
        st.none() | st.booleans() | st.integers(min_value=-10**500, max_value=10**500)
        | st.floats(allow_nan=not finite, allow_infinity=not finite) | st.text(max_size=20),
        lambda children: st.lists(children, max_size=6) | st.dictionaries(st.text(max_size=5), children, max_size=4),
        max_leaves=40)



numbers = st.integers(min_value=-10, max_value=500) | st.floats(-10, 500) | st.booleans() | st.text(max_size=4)
near_valid_points = st.lists(st.lists(numbers, min_size=0, max_size=3), max_size=80)
# what a text input may receive: JSON texts of anything, near-valid prompts, plain text, and non-strings
# (a request body is strict JSON: a raw NaN cannot be sent, only a text that says NaN)
texts = (json_values(finite=False).map(json.dumps) | near_valid_points.map(json.dumps) | st.text(max_size=200)
         | json_values(finite=True) | st.sampled_from(["", "null", "[" * 3000, "9" * 5000, "[[1e400, 1]]",
                                                       "[[NaN, 1]]"]))
FAST = settings(max_examples=40, deadline=None, database=None, suppress_health_check=list(HealthCheck))
PATH = re.compile(r"/(tmp|root|home|work|etc|usr)/")


@pytest.fixture(scope="module")
def photo(server, sample) -> dict:
    uploaded = httpx.post(server + "gradio_api/upload", files={"files": open(sample[0], "rb")}, timeout=30).json()[0]
    return {"path": uploaded, "orig_name": sample[0].name, **forge.MARKER}


@pytest.fixture(scope="module")
def endpoints(server) -> dict[str, int]:
    return {e["api_name"]: e["fn_index"] for e in forge.events(server) if e["api_visibility"] == "public"}


def assert_answered(server, fn_index: int, data: list) -> None:
    answer = forge.call(server, fn_index, data, session=uuid.uuid4().hex, timeout=120)
    assert answer["status"] in (200, 400, 413), (data, answer)
    text = answer["text"]
    assert "Traceback" not in text, (data, text[-400:])
    if answer["status"] == 200:
        assert answer["success"] is not None, (data, text[-400:])  # the job completed: a result or a message
        if not answer["success"]:
            message = json.loads(text.strip().splitlines()[-1][5:])["output"]["error"]
            assert isinstance(message, str) and 10 < len(message) < 700, (data, message)
            assert not PATH.search(message), (data,
                                              message)  # a result's files are served by path; a message names none
    else:
        assert not PATH.search(text), (data, text[-400:])


@FAST
@given(points=texts, labels=texts, box=texts)
def test_sam_prompt_texts(server, endpoints, photo, points, labels, box):
    assert_answered(server, endpoints["sam_prompt"], [photo, points, labels, box])


@FAST
@given(model=texts)
def test_segment_model_names(server, endpoints, photo, model):
    assert_answered(server, endpoints["segment"], [photo, model])


objects = st.lists(st.fixed_dictionaries({}, optional={
    "name": st.text(max_size=8) | json_values(finite=True), "points": near_valid_points | json_values(finite=True),
    "labels": st.lists(st.sampled_from([0, 1, True, "1", 2, None]), max_size=6) | json_values(finite=True),
    "box": st.lists(numbers, max_size=5) | json_values(finite=True)}), max_size=5)


@FAST
@given(value=objects.map(json.dumps) | texts)
def test_sam_objects_lists(server, endpoints, photo, value):
    assert_answered(server, endpoints["sam_objects"], [photo, value])


classed = st.lists(st.fixed_dictionaries({}, optional={
    "points": near_valid_points | json_values(finite=True), "labels": st.lists(st.sampled_from([0, 1, "1"]),
                                                                               max_size=4),
    "box": st.lists(numbers, max_size=5), "class": st.sampled_from(["Sky", "Car", "car", "", "Boat", None, 3,
                                                                    "Sky" * 30])
    | json_values(finite=True)}), max_size=4)


@FAST
@given(value=classed.map(json.dumps) | texts)
def test_sam_truth_objects(server, endpoints, photo, value):
    assert_answered(server, endpoints["sam_truth"], [photo, value])


@settings(max_examples=15, deadline=None, database=None, suppress_health_check=list(HealthCheck))
@given(model=texts | st.sampled_from(["unet", "fcn8s", "segformer_b0"]))
def test_refine_model_names(server, endpoints, photo, model):
    """Fewer examples: a valid name runs the model and SAM on up to 30 regions."""
    assert_answered(server, endpoints["refine"], [photo, model])


@settings(max_examples=15, deadline=None, database=None, suppress_health_check=list(HealthCheck))
@given(grid=json_values(finite=True) | st.integers(-3, 20) | st.floats(-3, 20))
def test_sam_everything_grids(server, endpoints, photo, grid):
    """Fewer examples: a valid grid runs SAM's automatic masks (up to 16 x 16 prompts)."""
    assert_answered(server, endpoints["sam_everything"], [photo, grid])


def test_the_server_still_answers_after_the_fuzzing(server, sample):
    from gradio_client import Client, handle_file

    client = Client(server, verbose=False)
    _, info = client.predict(handle_file(str(sample[0])), "fcn8s", api_name="/segment")
    assert info["height"] == 360
