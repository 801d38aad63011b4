"The CPU bf16 recipe option (bf16 autocast + channels_last): trains, checkpoints and predicts like fp32 (~10 s)."
import torch
from augflat.data import ImageSet
from augflat.train import train, get_recipe, load_checkpoint, predict, evaluate_accuracy


def _tiny_set(n=64, seed=0):
    g = torch.Generator().manual_seed(seed)
    return ImageSet(torch.randint(0, 256, (n, 3, 32, 32), dtype=torch.uint8, generator=g),
                    torch.randint(0, 10, (n,), generator=g), [str(i) for i in range(10)], name='cifar10')


def test_cpu_bf16_recipe_trains_and_predicts(tmp_path):
    ds = _tiny_set()
    recipe = get_recipe('cifar', epochs=1, batch_size=32, cpu_bf16=True)
    final = train('convnet_small', ds, recipe, tmp_path / 'bf16', test_set=ds, device='cpu', progress=False)
    assert torch.isfinite(torch.tensor(final['train_loss'])) and 0 <= final['test_acc'] <= 100
    model, meta = load_checkpoint(tmp_path / 'bf16')
    assert meta['recipe']['cpu_bf16'] is True
    fp32, bf16 = predict(model, ds.x, 32), predict(model, ds.x, 32, bf16=True)
    assert bf16.dtype == torch.float32 and not torch.equal(fp32, bf16)          # the bf16 path really ran
    assert (fp32.argmax(1) == bf16.argmax(1)).float().mean() >= 0.9             # and it predicts like fp32
    assert torch.allclose(fp32, bf16, atol=0.1 * float(fp32.abs().max()))
    assert abs(evaluate_accuracy(model, ds, bf16=True)['acc'] - evaluate_accuracy(model, ds)['acc']) <= 10
    assert get_recipe('cifar').cpu_bf16 is False                                 # off unless a preset asks for it
