"""A ground truth made of SAM objects with classes (seg.sam.truth), and the classes kept
with the objects (JSON, COCO). SAM's answers to a model's regions turned into objects: test_refine.py."""

import json

import numpy as np
import pytest

from seg.data.camvid import CLASSES, PALETTE
from seg.data.ground_truth import read_ground_truth
from seg.explorer.export import coco_objects, objects_from_coco
from seg.labels import IGNORE_INDEX
from seg.sam.prompts import Objects
from seg.sam.truth import left_out, save_truth, truth_from_objects
from ui.limits import Limits


def two_objects() -> tuple[Objects, dict[int, np.ndarray]]:
    """A building (rows 0-9) and a car in front of it (rows 6-13, overlapping rows 6-9), 20x30."""
    building, car = np.zeros((20, 30), bool), np.zeros((20, 30), bool)
    building[:10] = True
    car[6:14, 5:15] = True
    objects = Objects().click(15, 3, "positive").classify("Building").add().click(10, 10, "positive").classify("Car")
    return objects, {objects.items[0].id: building, objects.items[1].id: car}


def test_objects_are_painted_in_order_later_over_earlier_and_void_elsewhere():
    objects, masks = two_objects()
    labels = truth_from_objects(objects, masks, CLASSES, size=(20, 30))
    building, car = CLASSES.index("Building"), CLASSES.index("Car")
    assert labels[3, 20] == building and labels[8, 10] == car and labels[12, 10] == car
    assert labels[16, 20] == IGNORE_INDEX  # under no object: void
    moved = objects.move(-1)  # the car first: the building now covers its top
    assert [o.category for o in moved.items] == ["Car", "Building"] and moved.current.category == "Car"
    assert truth_from_objects(moved, masks, CLASSES, size=(20, 30))[8, 10] == building
    assert objects.move(5).items == objects.items  # already last
    bigger = truth_from_objects(objects, masks, CLASSES, size=(40, 60))  # masks enlarged to the photo's size
    assert bigger.shape == (40, 60) and bigger[16, 20] == car


def test_a_ground_truth_needs_a_class_for_every_outlined_object(tmp_path):
    objects, masks = two_objects()
    with pytest.raises(ValueError, match="object 2 has no class: pick one of Sky"):
        truth_from_objects(objects.classify(None), masks, CLASSES, size=(20, 30))
    with pytest.raises(ValueError, match="unknown class 'Boat'"):
        truth_from_objects(objects.classify("Boat"), masks, CLASSES, size=(20, 30))
    with pytest.raises(ValueError, match="no object is outlined yet"):
        truth_from_objects(Objects(), {}, CLASSES, size=(20, 30))
    added = objects.add()  # an object added and not clicked yet is left out
    assert np.array_equal(truth_from_objects(added, masks, CLASSES, size=(20, 30)),
                          truth_from_objects(objects, masks, CLASSES, size=(20, 30)))


def test_what_is_left_out_is_named_with_why():
    """An object without a mask is not in an export or a ground truth: the note names each (a box whose
    second corner did not register was left out with no word)."""
    objects, masks = two_objects()
    assert left_out(objects, masks) == ""
    half_box = objects.add().click(3, 3, "box")
    nothing = half_box.add("the bus")
    again = nothing.add().click(20, 5, "positive")  # a prompt SAM has not answered yet
    said = left_out(again, masks)
    assert said == ("Left out, without a mask: object 3: one corner of its box: click the other; "
                    "object 4 (the bus): nothing clicked; object 5: no mask yet: click it again.")


def test_the_label_and_colour_pngs_read_back_as_the_same_ground_truth(tmp_path):
    objects, masks = two_objects()
    labels = truth_from_objects(objects, masks, CLASSES, size=(20, 30))
    ids, colour = save_truth(tmp_path, "street", labels, PALETTE)
    for path, form in ((ids, "label ids"), (colour, "colour")):
        read = read_ground_truth(path, image_shape=(20, 30))
        assert np.array_equal(read.labels, labels), form


def test_classes_are_kept_with_the_objects_in_json_and_coco():
    objects, masks = two_objects()
    saved = json.loads(json.dumps(objects.to_json()))
    assert [o.get("class") for o in saved["objects"]] == ["Building", "Car"]
    again = Objects.from_json(saved, limits=Limits(), classes=CLASSES)
    assert again == objects
    assert objects.click(11, 11, "positive").current.category == "Car"  # a click keeps the class
    assert objects.clear().current.category == "Car"
    coco = coco_objects(objects, masks, file_name="street.png", size=(20, 30), classes=CLASSES)
    assert [a["category_id"] for a in coco["annotations"]] == [CLASSES.index("Building") + 1, CLASSES.index("Car") + 1]
    assert {c["id"]: c["name"] for c in coco["categories"]}[CLASSES.index("Car") + 1] == "Car"
    assert objects_from_coco(coco, size=(20, 30), limits=Limits(), classes=CLASSES) == objects
    saved["objects"][1]["class"] = "Boat"
    with pytest.raises(ValueError, match="object 2: unknown class 'Boat': choose one of Sky, Building"):
        Objects.from_json(saved, limits=Limits(), classes=CLASSES)
    unclassified = coco_objects(objects.classify(None), masks, file_name="s.png", size=(20, 30), classes=CLASSES)
    assert unclassified["annotations"][1]["category_id"] == len(CLASSES) + 1  # "object": no class given
    assert unclassified["categories"][-1] == {"id": len(CLASSES) + 1, "name": "object"}
