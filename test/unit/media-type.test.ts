import { describe, expect, it } from 'vitest';
import { closest } from '../../src/core/shared/did-you-mean.js';
import {
  compileRules,
  conventionFor,
  inferMediaType,
  RECOGNISED_MEDIA_TYPES,
  wordsOf,
} from '../../src/core/inputs/media-type.js';

describe('file-name conventions', () => {
  it.each([
    ['passport_front.jpg', 'IMAGE_PASSPORT_FRONT'],
    ['Passport.PNG', 'IMAGE_PASSPORT_FRONT'],
    ['scan-passport.tiff', 'IMAGE_PASSPORT_FRONT'],
    ['drivers_license_front.png', 'IMAGE_DRIVERS_LICENSE_FRONT'],
    ['driver-license-back.jpg', 'IMAGE_DRIVERS_LICENSE_BACK'],
    ['driving licence front.jpeg', 'IMAGE_DRIVERS_LICENSE_FRONT'],
    ["driver's license back.jpg", 'IMAGE_DRIVERS_LICENSE_BACK'],
    ['DL_back.gif', 'IMAGE_DRIVERS_LICENSE_BACK'],
    ['driversLicenseFront.png', 'IMAGE_DRIVERS_LICENSE_FRONT'],
    ['id_card_front.jpg', 'IMAGE_ID_CARD_FRONT'],
    ['national-id-back.png', 'IMAGE_ID_CARD_BACK'],
    ['IDCardBack.jpg', 'IMAGE_ID_CARD_BACK'],
    ['id.front.jpg', 'IMAGE_ID_CARD_FRONT'],
    ['selfie.jpg', 'IMAGE_FACE_IMAGE'],
    ['liveness_frame2.png', 'IMAGE_FACE_IMAGE'],
    ['Face.JPG', 'IMAGE_FACE_IMAGE'],
    ['profile_picture.png', 'IMAGE_PROFILE_PICTURE'],
    ['avatar.gif', 'IMAGE_PROFILE_PICTURE'],
    ['check_front.tif', 'IMAGE_CHECK_FRONT'],
    ['cheque-back.jpg', 'IMAGE_CHECK_BACK'],
  ])('infers %s as %s', (name, expected) => {
    expect(conventionFor(name)).toBe(expected);
  });

  it.each([
    'drivers_license.jpg', // no side
    'id_card.png', // no side
    'passport_back.jpg', // Unit21 has no passport back type
    'check.jpg',
    'holiday_photo.jpg',
    'identity.png', // "id" must be a whole word
    'front_and_back_id.jpg', // both sides
  ])('infers nothing from %s', (name) => {
    expect(conventionFor(name)).toBeUndefined();
  });

  it('falls through to later rules when a document word has no side', () => {
    expect(conventionFor('customer_id_42_selfie.jpg')).toBe('IMAGE_FACE_IMAGE');
  });

  it('splits words on separators, camelCase and digits', () => {
    expect(wordsOf('cust42__passportFront-2.jpg')).toEqual(['cust', '42', 'passport', 'front', '2']);
  });

  it('applies the built-in table to images only', () => {
    expect(inferMediaType('/x/passport_front.pdf', [])).toBeUndefined();
    expect(inferMediaType('/x/selfie.mp4', [])).toBeUndefined();
    expect(inferMediaType('/x/selfie.eps', [])).toBe('IMAGE_FACE_IMAGE');
  });

  it('tries config rules first, on any file type, by glob or regex', async () => {
    const rules = await compileRules([
      { glob: '*_poa.{pdf,png}', media_type: 'PROOF_OF_ADDRESS' },
      { regex: '^kyc-\\d+-face', media_type: 'IMAGE_FACE_IMAGE' },
    ]);
    expect(inferMediaType('/a/jane_POA.pdf', rules)).toBe('PROOF_OF_ADDRESS');
    expect(inferMediaType('/a/kyc-77-face.jpg', rules)).toBe('IMAGE_FACE_IMAGE');
    expect(inferMediaType('/a/passport_front.jpg', rules)).toBe('IMAGE_PASSPORT_FRONT');
  });

  it('refuses a rule without exactly one pattern, naming its index', async () => {
    await expect(compileRules([{ glob: '*.jpg', media_type: 'X' }, { media_type: 'Y' }])).rejects.toThrow(
      /conventions\[1\]/,
    );
    await expect(compileRules([{ regex: '(', media_type: 'Y' }])).rejects.toThrow(/conventions\[0\]/);
    await expect(compileRules([{ regex: '^(?=kyc)', media_type: 'Y' }])).rejects.toThrow(
      "conventions[0]: the regex cannot be used (invalid or unsupported Perl syntax: `(?=`); patterns use RE2's syntax",
    );
    await expect(compileRules(Array.from({ length: 101 }, () => ({ glob: '*.pdf', media_type: 'X' })))).rejects.toThrow(
      'conventions has 101 rules, more than 100',
    );
    await expect(compileRules([{ regex: `(.*a){1000}${'z'.repeat(500)}`, media_type: 'X' }])).rejects.toThrow(
      'conventions[0]: the regex is 511 characters, over 500',
    );
  });

  it('matches in time linear in the name, whoever wrote the pattern: a backtracking regex or glob cannot hang a run', async () => {
    const rules = await compileRules([
      { regex: '^(a+)+$', media_type: 'X' },
      { glob: '*a*a*a*a*a*a*a*a*a*a*b', media_type: 'Y' },
    ]);
    // Each of these takes a backtracking engine (JavaScript's RegExp) longer than this test's timeout.
    expect(inferMediaType(`/a/${'a'.repeat(40)}!.jpg`, rules)).toBeUndefined();
    expect(inferMediaType(`/a/${'a'.repeat(5000)}.jpg`, rules)).toBeUndefined();
    expect(inferMediaType(`/a/${'a'.repeat(40)}`, rules)).toBe('X');
  });
});

describe('closest recognised media_type', () => {
  it('suggests the type a value is a typo of, and nothing for a far-off value', () => {
    const closestMediaType = (value: string) => closest(value, RECOGNISED_MEDIA_TYPES);
    expect(closestMediaType('IMAGE_PASPORT_FRONT')).toBe('IMAGE_PASSPORT_FRONT');
    expect(closestMediaType('image_face_img')).toBe('IMAGE_FACE_IMAGE');
    expect(closestMediaType('IMAGE_DRIVER_LICENSE_FRONT')).toBe('IMAGE_DRIVERS_LICENSE_FRONT');
    expect(closestMediaType('PROOF_OF_ADDRESS')).toBeUndefined();
  });
});
