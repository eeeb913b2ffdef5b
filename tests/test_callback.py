"""The callbacks of tritonsym.callback, driven batch by batch with a clock the test sets:
what each logs, when, the figures in it, and what it resets or saves."""

import io
import logging
import os

import numpy as np
import pytest

import tritonsym as ts
from tritonsym import ParamError
from tritonsym.callback import BatchEndParam

LOGGER = "tritonsym"


@pytest.fixture
def clock(monkeypatch):
    now = [0.0]
    monkeypatch.setattr(ts.callback.time, "perf_counter", lambda: now[0])
    return now


def _metric(right: int, of: int):
    metric = ts.metric.Accuracy()
    labels = np.zeros(of)
    preds = np.zeros((of, 2))
    preds[:right, 0] = preds[right:, 1] = 1.0
    metric.update([labels], [preds])
    return metric


def test_speedometer_logs_samples_per_second_every_frequent_batches(clock, caplog):
    speed = ts.callback.Speedometer(batch_size=10, frequent=2)
    assert np.isnan(speed.speed)
    metric = _metric(3, 4)
    with caplog.at_level(logging.INFO, logger=LOGGER):
        speed(BatchEndParam(0, 0, metric))  # the epoch's first batch starts the clock
        clock[0] = 1.0
        speed(BatchEndParam(0, 1, metric))  # not a multiple of 2: nothing
        assert caplog.text == "" and metric.num_inst == 4
        clock[0] = 4.0
        speed(BatchEndParam(0, 2, metric))  # 2 batches of 10 in 4 s
        assert speed.speed == 5.0
        assert "Epoch[0] Batch [0-2]\tSpeed: 5.00 samples/sec\taccuracy=0.750000" in caplog.text
        assert metric.num_inst == 0  # auto_reset: the next figure covers the next batches only
        clock[0] = 5.0
        speed(BatchEndParam(0, 4, _metric(1, 2)))  # from the last log: 2 batches in 1 s
        assert speed.speed == 20.0 and "Epoch[0] Batch [2-4]\tSpeed: 20.00 samples/sec\taccuracy=0.500000" \
            in caplog.text
        caplog.clear()
        clock[0] = 9.0
        speed(BatchEndParam(1, 0, metric))  # a new epoch starts the clock again
        speed(BatchEndParam(1, 2, None))  # no time passed, no metric
        assert speed.speed == float("inf") and caplog.text.rstrip().endswith("Epoch[1] Batch [0-2]\tSpeed: inf "
                                                                             "samples/sec")


def test_speedometer_times_each_epoch_from_its_own_start(clock, caplog):
    """Epochs of one batch: each call starts an epoch, so nothing is timed (a batch 0 of
    epoch 1 timed against epoch 0's batch 0 would log a speed of 0)."""
    speed = ts.callback.Speedometer(batch_size=4, frequent=1)
    with caplog.at_level(logging.INFO, logger=LOGGER):
        for epoch in range(3):
            clock[0] = float(epoch)
            speed(BatchEndParam(epoch, 0, None))
    assert caplog.text == "" and np.isnan(speed.speed)


def test_speedometer_keeps_the_metric_without_auto_reset(clock):
    speed = ts.callback.Speedometer(batch_size=1, frequent=1, auto_reset=False)
    metric = _metric(1, 2)
    speed(BatchEndParam(0, 0, metric))
    clock[0] = 1.0
    speed(BatchEndParam(0, 1, metric))
    assert metric.num_inst == 2 and speed.speed == 1.0
    for batch_size, frequent in ((0, 1), (1, 0)):
        with pytest.raises(ParamError, match=f"Speedometer: batch_size={batch_size} and frequent={frequent} must be"):
            ts.callback.Speedometer(batch_size, frequent)


def test_log_train_metric_and_validation_metrics(caplog):
    log = ts.callback.log_train_metric(period=2, auto_reset=True)
    metric = _metric(1, 4)
    with caplog.at_level(logging.INFO, logger=LOGGER):
        log(BatchEndParam(3, 1, metric))
        assert caplog.text == "" and metric.num_inst == 4
        log(BatchEndParam(3, 2, metric))
        assert "Iter[3] Batch[2] Train-accuracy=0.250000" in caplog.text and metric.num_inst == 0
        caplog.clear()
        ts.callback.log_train_metric(period=1)(BatchEndParam(0, 5, metric := _metric(2, 4)))
        assert "Iter[0] Batch[5] Train-accuracy=0.500000" in caplog.text and metric.num_inst == 4
        caplog.clear()
        ts.callback.LogValidationMetricsCallback()(BatchEndParam(4, 3, _metric(3, 4)))
        assert caplog.text.rstrip().endswith("Epoch[4] Validation-accuracy=0.750000")


def test_progress_bar_has_one_bar_per_epoch_and_closes_it_at_the_total():
    out = io.StringIO()
    bar = ts.callback.ProgressBar(total=2, file=out)
    bar(BatchEndParam(0, 0, _metric(1, 2)))
    first = bar._bar
    assert first is not None and first.n == 1 and first.postfix == "accuracy=0.5"
    bar(BatchEndParam(0, 1, _metric(1, 2)))
    assert bar._bar is None  # the total reached: closed
    assert first.disable  # tqdm's closed
    bar(BatchEndParam(1, 0, None))
    second = bar._bar
    assert second is not first and second.n == 1
    bar.close()
    assert second.disable and bar._bar is None
    open_ended = ts.callback.ProgressBar(file=out)  # no total: each bar closes when the next epoch begins
    open_ended(BatchEndParam(0, 0, None))
    open_ended(BatchEndParam(0, 1, None))
    first = open_ended._bar
    open_ended(BatchEndParam(1, 0, None))
    assert first.disable and first.n == 2 and not open_ended._bar.disable
    open_ended.close()
    text = out.getvalue()
    assert "epoch 0:" in text and "epoch 1:" in text and "/2 [" in text


def test_do_checkpoint_saves_every_period_epochs(tmp_path, caplog):
    with pytest.raises(ParamError, match="do_checkpoint: period=0 must be an integer >= 1"):
        ts.callback.do_checkpoint(str(tmp_path / "net"), period=0)
    net = ts.sym.FullyConnected(ts.sym.Variable("data"), name="fc", num_hidden=2)
    args = {"fc_weight": np.ones((2, 3), np.float32), "fc_bias": np.zeros(2, np.float32)}
    save = ts.callback.do_checkpoint(str(tmp_path / "net"), period=3)
    with caplog.at_level(logging.INFO, logger=LOGGER):
        for epoch in range(7):
            save(epoch, net, args, {})
    assert sorted(os.listdir(tmp_path)) == ["net-0003.safetensors", "net-0006.safetensors", "net-symbol.json"]
    assert f'Saved checkpoint to "{tmp_path / "net"}-0006.safetensors"' in caplog.text
    _, loaded, _ = ts.model.load_checkpoint(str(tmp_path / "net"), 6)
    assert loaded["fc_weight"].tolist() == args["fc_weight"].tolist()
