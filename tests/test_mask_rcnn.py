import torch
from detectron2.modeling.meta_arch import GeneralizedRCNN
from detectron2.utils.events import EventStorage

from wsis_d2.engine.trainer import Trainer

from .conftest import small_config


def test_detectron2_mask_rcnn_trains_a_step_and_predicts(tiny_shapes):
    cfg = small_config("MaskRCNN/R18_shapes.yaml")
    model = Trainer.build_model(cfg)
    assert type(model) is GeneralizedRCNN  # detectron2's own, not a copy
    batch = next(iter(Trainer.build_train_loader(cfg)))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    with EventStorage(0):
        losses = model(batch)
        assert "loss_mask" in losses and all(torch.isfinite(v) for v in losses.values())
        sum(losses.values()).backward()
        optimizer.step()
    model.eval()
    with torch.no_grad():
        out = model([{"image": batch[0]["image"], "height": 40, "width": 60}])
    assert out[0]["instances"].image_size == (40, 60)
